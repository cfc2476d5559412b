import t from "tap";
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { createServer } from "node:https";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, createSecureContext, type TLSSocket } from "node:tls";
import { promisify } from "node:util";
import { ensurePki, type PkiMaterial } from "../../../src/pki/ca/bootstrap.js";
import { identityFromCertificate } from "../../../src/pki/identity.js";
import { issuePkcs12 } from "../../../src/pki/keys/pkcs12.js";
import { DEFAULT_CLIENT_PROFILE, defineProfile } from "../../../src/pki/issue/profile.js";
import { KEY_ALGORITHMS } from "../../../src/pki/keys/keys.js";

t.setTimeout(240_000);
const run = promisify(execFile);

let dir = "";
let pki: PkiMaterial;
t.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "postern-p12-"));
  pki = (await ensurePki({ dir, hostnames: [], env: {} })).material;
});
t.teardown(() => rm(dir, { recursive: true, force: true }));

const ALICE = "spiffe://postern.local/client/alice";

t.test("every key type: openssl reads the bundle, node accepts it as pfx", async (t) => {
  for (const keyAlgorithm of KEY_ALGORITHMS) {
    const { pfx, certificate } = await issuePkcs12({ issuer: pki.issuer, identity: ALICE, roles: ["client"], keyAlgorithm, password: "x" });
    const file = join(dir, `${keyAlgorithm}.p12`);
    await writeFile(file, pfx);
    const info = await run("openssl", ["pkcs12", "-info", "-nokeys", "-passin", "pass:x", "-in", file]);
    const infoText = info.stdout + info.stderr;
    t.match(infoText, /MAC: sha256/, `${keyAlgorithm} MAC`);
    t.match(infoText, /PBES2, PBKDF2, AES-256-CBC/, `${keyAlgorithm} key encryption`);
    t.equal((info.stdout.match(/BEGIN CERTIFICATE/g) ?? []).length, 2, `${keyAlgorithm} leaf + issuing`);
    const withKey = await run("openssl", ["pkcs12", "-in", file, "-passin", "pass:x", "-noenc"]);
    t.match(withKey.stdout, /BEGIN PRIVATE KEY/, `${keyAlgorithm} key decrypts`);
    t.doesNotThrow(() => createSecureContext({ pfx: Buffer.from(pfx), passphrase: "x" }), `${keyAlgorithm} node pfx`);
    t.equal(new X509Certificate(certificate.pem).serialNumber.toLowerCase(), certificate.serial);
    await t.rejects(run("openssl", ["pkcs12", "-in", file, "-passin", "pass:wrong", "-noenc"]), `${keyAlgorithm} wrong password`);
  }
});

t.test("curl and node's tls client authenticate with the bundle", async (t) => {
  const { pfx } = await issuePkcs12({ issuer: pki.issuer, identity: ALICE, roles: ["client"], keyAlgorithm: "P-256", password: "s3cret pass" });
  const file = join(dir, "curl.p12");
  await writeFile(file, pfx);
  const server = createServer(
    { key: pki.serverKeyPem, cert: pki.serverCertChainPem, ca: pki.caBundlePem, requestCert: true, rejectUnauthorized: true },
    (req, res) => res.end(identityFromCertificate((req.socket as TLSSocket).getPeerCertificate()).id),
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const caFile = join(dir, "ca-bundle.pem");
  const { stdout } = await run("curl", ["-sS", "--fail", "--cacert", caFile, "--cert-type", "P12", "--cert", `${file}:s3cret pass`, `https://localhost:${port}/`]);
  t.equal(stdout, ALICE, "curl presented the bundle's certificate");

  const socket = connect({ host: "127.0.0.1", port, servername: "localhost", ca: pki.caBundlePem, pfx: Buffer.from(pfx), passphrase: "s3cret pass" });
  await new Promise<void>((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
  socket.write("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  let body = "";
  for await (const chunk of socket) body += String(chunk);
  t.match(body, ALICE, "node tls client with pfx");
});

t.test("profile checks and password rules", async (t) => {
  await t.rejects(
    issuePkcs12({ issuer: pki.issuer, identity: "spiffe://postern.local/admin/x", keyAlgorithm: "P-256", password: "x", profile: DEFAULT_CLIENT_PROFILE }),
    { code: "csr-forbidden-name" },
  );
  const ecOnly = defineProfile({ name: "ec", allowedKeyTypes: ["P-256"] });
  await t.rejects(issuePkcs12({ issuer: pki.issuer, identity: ALICE, keyAlgorithm: "RSA-2048", password: "x", profile: ecOnly }), { code: "csr-weak-key" });
  await t.rejects(issuePkcs12({ issuer: pki.issuer, identity: ALICE, keyAlgorithm: "P-256", password: "" }), { code: "bad-request" });
  await t.rejects(issuePkcs12({ issuer: pki.issuer, identity: ALICE, keyAlgorithm: "P-256", password: "pässword" }), { code: "bad-request" });
  const now = Date.now();
  const { certificate } = await issuePkcs12({
    issuer: pki.issuer, identity: ALICE, roles: ["client"], keyAlgorithm: "Ed25519", password: "x", profile: DEFAULT_CLIENT_PROFILE,
    lifetimeSeconds: 7 * 86_400, now: () => now,
  });
  t.equal(certificate.notAfterMs, Math.floor((now + 86_400_000) / 1000) * 1000, "capped at the profile's 24 h");
});
