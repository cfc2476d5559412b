import t, { type Test } from "tap";
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, createServer, type TLSSocket } from "node:tls";
import { promisify } from "node:util";
import { ensurePki, loadPki, planPki } from "../../../src/pki/ca/bootstrap.js";
import { initCa } from "../../../src/pki/ca/ca.js";
import { identityFromCertificate } from "../../../src/pki/identity.js";
import { PosternError } from "../../../src/errors.js";

t.setTimeout(120_000);
const run = promisify(execFile);

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "postern-bootstrap-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const noEnv = {};

t.test("creates the PKI, then loads the same one", async (t) => {
  const dir = await tempDir(t);
  const first = await ensurePki({ dir, hostnames: ["gw.example"], env: noEnv });
  t.equal(first.created, true);
  for (const f of ["root-ca.crt", "root-ca.key", "issuing-ca.crt", "issuing-ca.key", "ca-bundle.pem", "server.crt",
    "server.key", "demo-client.crt", "demo-client.key", "admin.crt", "admin.key", "ca-passphrase"]) {
    t.ok(first.createdFiles.includes(join(dir, f)), `created ${f}`);
  }
  const second = await ensurePki({ dir, hostnames: ["gw.example"], env: noEnv });
  t.equal(second.created, false);
  t.same(second.createdFiles, []);
  t.equal(second.material.rootCertPem, first.material.rootCertPem);
  t.equal(second.material.serverCertChainPem, first.material.serverCertChainPem);
  t.equal(second.material.caBundlePem, first.material.issuingCertPem + first.material.rootCertPem);
  const loaded = await loadPki({ dir, hostnames: ["gw.example"], env: noEnv });
  t.equal(loaded.issuingCertPem, first.material.issuingCertPem);
});

t.test("keys and the passphrase file are 0600 and CA and server keys are encrypted", async (t) => {
  const dir = await tempDir(t);
  await ensurePki({ dir, hostnames: [], env: noEnv });
  for (const f of ["root-ca.key", "issuing-ca.key", "server.key", "demo-client.key", "admin.key", "ca-passphrase"]) {
    t.equal((await stat(join(dir, f))).mode & 0o777, 0o600, f);
  }
  for (const f of ["root-ca.key", "issuing-ca.key", "server.key"]) {
    t.match(await readFile(join(dir, f), "utf8"), /BEGIN ENCRYPTED PRIVATE KEY/, f);
  }
  t.match(await readFile(join(dir, "demo-client.key"), "utf8"), /BEGIN PRIVATE KEY/);
  const passphrase = (await readFile(join(dir, "ca-passphrase"), "utf8")).trim();
  t.equal(Buffer.from(passphrase, "base64url").length, 32);
});

t.test("a wrong passphrase fails with a clear error, an env passphrase is used", async (t) => {
  const dir = await tempDir(t);
  await ensurePki({ dir, hostnames: [], env: { POSTERN_CA_PASSPHRASE: "correct horse battery" } });
  await t.rejects(ensurePki({ dir, hostnames: [], passphrase: "not the passphrase" }), { name: "PosternError", code: "internal", message: /passphrase/ });
  await t.rejects(loadPki({ dir, hostnames: [], env: { POSTERN_CA_PASSPHRASE: "wrong wrong wrong" } }), { code: "internal" });
  await t.rejects(loadPki({ dir, hostnames: [], env: noEnv }), { code: "not-found" }, "no passphrase anywhere");
  const ok = await loadPki({ dir, hostnames: [], passphrase: "correct horse battery" });
  t.ok(ok.serverKeyPem.includes("BEGIN PRIVATE KEY"));
});

t.test("loadPki without a CA is not-found; initCa refuses to overwrite without force", async (t) => {
  const dir = await tempDir(t);
  await t.rejects(loadPki({ dir, hostnames: [], env: noEnv }), { code: "not-found" });
  const first = await initCa({ dir, env: noEnv });
  const err = await initCa({ dir, env: noEnv }).catch((e: unknown) => e);
  t.ok(err instanceof PosternError && err.code === "conflict");
  const forced = await initCa({ dir, env: noEnv, force: true, keyAlgorithm: "P-384" });
  t.not(forced.rootCertPem, first.rootCertPem);
  t.equal(forced.passphrase, first.passphrase, "reuses the existing passphrase file");
});

t.test("openssl verifies the server, demo and admin chains", async (t) => {
  const dir = await tempDir(t);
  await ensurePki({ dir, hostnames: ["gw.example"], env: noEnv, defaultPublicBaseUrl: "http://127.0.0.1:9464" });
  for (const leaf of ["server.crt", "demo-client.crt", "admin.crt"]) {
    const { stdout } = await run("openssl", ["verify", "-CAfile", join(dir, "root-ca.crt"), "-untrusted", join(dir, "issuing-ca.crt"), join(dir, leaf)]);
    t.match(stdout, /: OK/, leaf);
  }
  const { stdout: purpose } = await run("openssl", ["verify", "-purpose", "sslserver", "-CAfile", join(dir, "root-ca.crt"), "-untrusted", join(dir, "issuing-ca.crt"), join(dir, "server.crt")]);
  t.match(purpose, /: OK/);
  const { stdout: text } = await run("openssl", ["x509", "-in", join(dir, "server.crt"), "-noout", "-text"]);
  t.match(text, /DNS:gw\.example/);
  t.match(text, /DNS:localhost/);
  t.match(text, /IP Address:127\.0\.0\.1/);
  t.match(text, /URI:http:\/\/127\.0\.0\.1:9464\/crl/);
  t.match(text, /OCSP - URI:http:\/\/127\.0\.0\.1:9464\/ocsp/);
  t.match(text, /CA:FALSE/);
  const { stdout: issuing } = await run("openssl", ["x509", "-in", join(dir, "issuing-ca.crt"), "-noout", "-text"]);
  t.match(issuing, /URI:http:\/\/127\.0\.0\.1:9464\/crl\/root/, "the issuing CA names where the root's CRL is");
  const { stdout: crlText } = await run("openssl", ["crl", "-in", join(dir, "root-ca.crl"), "-noout", "-text"]);
  t.match(crlText, /Issuer: O = Postern, CN = Postern Root CA/, "the root's CRL is made with the CA");
});

t.test("demo and admin identities; TLS handshake maps the peer to the identity", async (t) => {
  const dir = await tempDir(t);
  const { material } = await ensurePki({ dir, hostnames: [], env: noEnv });
  const demo = identityFromCertificate(new X509Certificate(await readFile(join(dir, "demo-client.crt"))));
  t.equal(demo.id, "spiffe://postern.local/client/demo");
  t.equal(demo.commonName, "demo");
  t.same(demo.roles, ["client"]);
  const admin = identityFromCertificate(new X509Certificate(await readFile(join(dir, "admin.crt"))));
  t.equal(admin.id, "spiffe://postern.local/admin/operator");
  t.same(admin.roles, ["admin"]);

  const server = createServer({
    key: material.serverKeyPem, cert: material.serverCertChainPem, ca: material.caBundlePem,
    requestCert: true, rejectUnauthorized: true,
  });
  const seen = new Promise<ReturnType<typeof identityFromCertificate>>((resolve) => {
    server.on("secureConnection", (s: TLSSocket) => {
      resolve(identityFromCertificate(s.getPeerCertificate()));
      s.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const client = connect({
    host: "127.0.0.1", port, servername: "localhost", ca: material.caBundlePem,
    key: await readFile(join(dir, "demo-client.key")), cert: await readFile(join(dir, "demo-client.crt")),
  });
  client.on("data", () => undefined);
  await new Promise<void>((resolve, reject) => client.once("secureConnect", resolve).once("error", reject));
  t.equal(client.authorized, true, "client trusts the server cert for localhost");
  const peer = await seen;
  client.destroy();
  t.same({ ...peer, notAfterMs: 0 }, { ...demo, notAfterMs: 0 });
  t.equal(peer.notAfterMs, demo.notAfterMs);
});

t.test("re-issues the server certificate for a new hostname or near expiry, keeps the CA", async (t) => {
  const dir = await tempDir(t);
  const first = await ensurePki({ dir, hostnames: ["a.example"], env: noEnv });
  const moreNames = await ensurePki({ dir, hostnames: ["a.example", "b.example"], env: noEnv });
  t.same(moreNames.createdFiles, [join(dir, "server.key"), join(dir, "server.crt")], "re-issued with a new key");
  t.ok(new X509Certificate(moreNames.material.serverCertChainPem).checkHost("b.example"));
  t.equal(moreNames.material.rootCertPem, first.material.rootCertPem);
  const later = Date.now() + 360 * 86_400_000;
  const renewed = await ensurePki({ dir, hostnames: ["a.example", "b.example"], env: noEnv, now: () => later });
  t.ok(renewed.createdFiles.includes(join(dir, "server.crt")));
  t.ok(renewed.createdFiles.includes(join(dir, "demo-client.crt")), "90-day client cert is past its renewal point too");
  t.ok(Date.parse(new X509Certificate(renewed.material.serverCertChainPem).validTo) > later + 300 * 86_400_000);
});

t.test("a damaged CA pair is refused", async (t) => {
  const dir = await tempDir(t);
  const other = await tempDir(t);
  await ensurePki({ dir, hostnames: [], env: noEnv, passphrase: "same passphrase" });
  await ensurePki({ dir: other, hostnames: [], env: noEnv, passphrase: "same passphrase" });
  await writeFile(join(dir, "issuing-ca.crt"), await readFile(join(other, "issuing-ca.crt")));
  await t.rejects(loadPki({ dir, hostnames: [], passphrase: "same passphrase" }), { code: "internal" });
});

t.test("bootstrap is fast", async (t) => {
  const dir = await tempDir(t);
  const start = performance.now();
  await ensurePki({ dir, hostnames: [], env: noEnv });
  t.ok(performance.now() - start < 1000, "created in under 1 s");
});

t.test("a new CA replaces leftovers of an older PKI instead of loading them", async (t) => {
  const dir = await tempDir(t);
  await ensurePki({ dir, hostnames: [], env: noEnv, passphrase: "old passphrase" });
  await rm(join(dir, "root-ca.crt"));
  await rm(join(dir, "root-ca.key"));
  const fresh = await ensurePki({ dir, hostnames: [], env: noEnv, passphrase: "new passphrase" });
  t.equal(fresh.created, true);
  t.ok(fresh.createdFiles.includes(join(dir, "server.key")));
  const { stdout } = await run("openssl", ["verify", "-CAfile", join(dir, "root-ca.crt"), "-untrusted", join(dir, "issuing-ca.crt"), join(dir, "demo-client.crt")]);
  t.match(stdout, /: OK/);
  const reloaded = await loadPki({ dir, hostnames: [], passphrase: "new passphrase" });
  t.equal(reloaded.serverCertChainPem, fresh.material.serverCertChainPem);
});

t.test("the public base URL is recorded in the certificates: a start asking for another is refused, none asked for keeps it", async (t) => {
  const dir = await tempDir(t);
  await ensurePki({ dir, hostnames: [], env: noEnv, publicBaseUrl: "http://127.0.0.1:9464" });
  const files = async () => Promise.all(["server.crt", "demo-client.crt", "admin.crt", "server.key"].map((f) => readFile(join(dir, f), "utf8")));
  const before = await files();
  const same = await ensurePki({ dir, hostnames: [], env: noEnv, publicBaseUrl: "http://127.0.0.1:9464" });
  t.same(same.createdFiles, []);
  await t.rejects(ensurePki({ dir, hostnames: [], env: noEnv, publicBaseUrl: "http://127.0.0.1:9999" }), { code: "conflict", message: /names the public base URL http:\/\/127\.0\.0\.1:9464.*asks for http:\/\/127\.0\.0\.1:9999/ });
  const defaulted = await ensurePki({ dir, hostnames: [], env: noEnv, defaultPublicBaseUrl: "http://127.0.0.1:9999" });
  t.same(defaulted.createdFiles, [], "a replica with another default URL rewrites nothing");
  t.equal(defaulted.material.publicBaseUrl, "http://127.0.0.1:9464", "and uses the recorded one");
  t.same(await files(), before);
});

t.test("planPki writes nothing; a re-issue always comes with a new key", async (t) => {
  const dir = await tempDir(t);
  const plan = await planPki({ dir, hostnames: [], env: noEnv });
  t.equal(plan.created, true);
  t.same(await readdir(dir).catch(() => []), [], "nothing on disk before the plan is written");
  t.same(plan.certificates.map((c) => [c.kind, c.issuedBecause]), [
    ["root-ca", "bootstrap"], ["issuing-ca", "bootstrap"], ["server", "bootstrap"], ["demo", "bootstrap"], ["admin", "bootstrap"],
  ]);
  await ensurePki({ dir, hostnames: [], env: noEnv });
  const oldKey = await readFile(join(dir, "demo-client.key"), "utf8");
  const later = Date.now() + 85 * 86_400_000;
  const stale = await planPki({ dir, hostnames: [], env: noEnv, now: () => later });
  t.same(stale.certificates.filter((c) => c.issuedBecause).map((c) => [c.kind, c.issuedBecause]), [["demo", "expiring"], ["admin", "expiring"]]);
  const demoKey = stale.writes.find((w) => w.path === join(dir, "demo-client.key"));
  t.ok(demoKey && demoKey.data !== oldKey, "a new key for the re-issued certificate");
  t.equal(await readFile(join(dir, "demo-client.key"), "utf8"), oldKey, "still nothing written");
});
