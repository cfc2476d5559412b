/**
 * Trust state in Redis mode, with real processes and a Redis of this test's own that keeps
 * nothing on disk: two replicas agree on the CRL; a replica with another public base URL
 * rewrites nothing and lets no revoked key back in; Redis restarting empty makes Postern fail
 * closed naming what was lost, never serving a revoked certificate as good, until
 * `postern pki restore`; the cRLNumber never goes down; an unreachable Redis is named.
 */
import { createHash, X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { AdminClient, PosternClient, PosternRequestError } from "../../src/client/index.js";
import { createCsr } from "../../src/pki/issue/csr-create.js";
import { generateKeyPair } from "../../src/pki/keys/keys.js";
import { identityFromCertificate } from "../../src/pki/identity.js";
import { freePort } from "../helpers/net.js";
import { runTool } from "../helpers/process.js";
import { startOwnRedis } from "../helpers/redis-server.js";
import { adminFlags, crlNumberOf, eventually, failedStart, fileHashes, postern, startPostern, type PosternProcess } from "../helpers/postern-process.js";

t.setTimeout(900_000);

const redis = await startOwnRedis(["--appendonly", "no"]);
t.teardown(() => redis.destroy());
const dir = await mkdtemp(join(tmpdir(), "postern-redis-trust-"));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const certs = join(dir, "certs");
const env = { POSTERN_REDIS_URL: redis.url };
// Both replicas in one directory: one PKI, one data directory, one audit log.
let a: PosternProcess = await startPostern(dir, env);
let b: PosternProcess = await startPostern(dir, env);
t.teardown(async () => {
  await Promise.all([a.stop(), b.stop()]);
});

const demoSerial = identityFromCertificate(new X509Certificate(await readFile(join(certs, "demo-client.crt")))).serial;
let n = 0;

/** The CRL a replica serves at /crl: its number, its bytes' hash, and whether it lists `serial`. */
async function crlOf(gw: PosternProcess, serial = demoSerial): Promise<{ number: bigint; sha256: string; lists: boolean }> {
  const der = Buffer.from(await (await fetch(`${gw.publicUrl}/crl`)).arrayBuffer());
  const file = join(dir, `crl-${++n}.der`);
  await writeFile(file, der);
  const text = (await runTool("openssl", ["crl", "-inform", "DER", "-in", file, "-noout", "-text"])).stdout;
  return { number: crlNumberOf(text), sha256: createHash("sha256").update(der).digest("hex"), lists: text.toUpperCase().includes(serial.toUpperCase()) };
}

/** Whether a certificate of the PKI directory gets a 202 from a replica (false: refused). */
async function accepted(gw: PosternProcess, name: "demo-client" | "admin"): Promise<{ ok: boolean; status?: number; code?: string }> {
  const client = new PosternClient({
    url: `https://localhost:${gw.dataPort}`,
    cert: await readFile(join(certs, `${name}.crt`)),
    key: await readFile(join(certs, `${name}.key`)),
    ca: await readFile(join(certs, "ca-bundle.pem")),
    attempts: 1,
  });
  try {
    const answer = await client.send("/v1/messages/orders", "{}");
    return { ok: answer.status === 202, status: answer.status, code: (answer.body as { code?: string }).code };
  } catch (error) {
    // An answer that is not 2xx, or (no status) a refused handshake.
    return error instanceof PosternRequestError ? { ok: false, status: error.status, code: error.code } : { ok: false };
  } finally {
    await client.close();
  }
}

const readyz = async (gw: PosternProcess) => {
  const res = await fetch(`${gw.publicUrl}/readyz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

/** Certificate, key and CRL files of the PKI directory (the trust ledger under state/ may grow). */
async function pkiFiles(): Promise<Record<string, string>> {
  return Object.fromEntries(Object.entries(await fileHashes(certs)).filter(([path]) => !path.startsWith("state/")));
}

t.test("two replicas on one Redis serve the same CRL (number and bytes) after a revocation", async (t) => {
  t.equal((await accepted(b, "demo-client")).ok, true, "the demo certificate works before");
  const revoked = await postern(dir, env, ["cert", "revoke", "--serial", demoSerial, "--reason", "keyCompromise", ...adminFlags(certs, a.adminPort)]);
  t.equal(revoked.code, 0, revoked.stderr);
  await eventually("both replicas list the revocation", async () => (await crlOf(a)).lists && (await crlOf(b)).lists);
  const [fromA, fromB] = [await crlOf(a), await crlOf(b)];
  t.equal(fromA.number, fromB.number, `same cRLNumber (${fromA.number})`);
  t.equal(fromA.sha256, fromB.sha256, "same bytes");
  t.equal((await accepted(a, "demo-client")).ok, false, "replica a refuses the revoked certificate");
  t.equal((await accepted(b, "demo-client")).ok, false, "replica b too");
  const pem = await runTool("sh", ["-c", `curl -s ${a.publicUrl}/ca.pem > ${dir}/ca.pem && curl -s ${a.publicUrl}/crl.pem > ${dir}/crl.pem && openssl x509 -in ${certs}/admin.crt > ${dir}/admin-leaf.pem && openssl verify -crl_check_all -CAfile ${dir}/ca.pem -CRLfile ${dir}/crl.pem ${dir}/admin-leaf.pem`]);
  t.equal(pem.code, 0, `openssl verify -crl_check_all with the public files only: ${pem.stdout}${pem.stderr}`);
  const audit = await postern(dir, env, ["audit", "verify", "--file", join(dir, "data", "audit.jsonl")]);
  t.equal(audit.code, 0, `two replicas share one audit log: ${audit.stdout}`);
});

t.test("a replica restarted with another public base URL rewrites no certificate and lets the revoked key in nowhere", async (t) => {
  const before = await pkiFiles();
  await b.stop();
  // Another public port, so another default base URL (POSTERN_PUBLIC_BASE_URL is unset).
  b = await startPostern(dir, { ...env, POSTERN_PUBLIC_PORT: String(await freePort()) });
  t.same(await pkiFiles(), before, "no certificate, key or CRL file changed");
  t.equal((await accepted(b, "demo-client")).ok, false, "the revoked key gets no 202");
  t.equal((await accepted(a, "demo-client")).ok, false);
  const explicit = await failedStart(dir, { ...env, POSTERN_PUBLIC_BASE_URL: "http://gateway.example:9464" });
  t.not(explicit.code, 0, "an explicitly different public base URL is refused");
  t.match(explicit.stderr, /names the public base URL http:\/\/127\.0\.0\.1:0 .*asks for http:\/\/gateway\.example:9464/);
  t.same(await pkiFiles(), before, "and changes nothing either");
});

t.test("Redis restarting empty: fail closed naming the lost state, revoked stays revoked, pki restore brings it back", async (t) => {
  const backup = join(dir, "backup.pki");
  const made = await postern(dir, env, ["pki", "backup", "--out", backup]);
  t.equal(made.code, 0, made.stderr);
  t.match(made.stdout, /wrote .*backup\.pki \(0600, encrypted with the CA passphrase\): 5 certificates \(1 revoked\)/);
  const numberBefore = (await crlOf(a)).number;

  await redis.stop();
  await redis.start(); // nothing on disk: an empty Redis
  await eventually("replica a notices the lost state", async () => (await readyz(a)).status === 503 && (await readyz(a)).body.pki === "state-lost");
  t.match((await readyz(a)).body, { status: "not-ready", pki: "state-lost", code: "pki-state-lost" });
  t.match(await a.logged(/PKI state lost/), /PKI state lost: Redis at redis:\/\/127\.0\.0\.1:\d+ \(key prefix postern:\{pki\}:\) lacks 5 certificate\(s\) and 1 revocation\(s\) recorded in the trust ledger/, "the error log names what was lost");
  t.match(await a.logged(new RegExp(`revoked ${demoSerial}`)), new RegExp(`revoked ${demoSerial} \\(keyCompromise\\)`));
  t.match(await (await fetch(`${a.publicUrl}/metrics`)).text(), /^postern_pki_state_lost 1$/m);
  const refused = await accepted(a, "admin");
  t.same(refused, { ok: false, status: 503, code: "pki-state-lost" }, "the data plane refuses with pki-state-lost");
  t.equal((await accepted(a, "demo-client")).ok, false, "the revoked certificate is not served as good");
  const crl = await crlOf(a);
  t.ok(crl.lists, "the CRL still lists the revocation the store lost");
  t.ok(crl.number >= numberBefore, `the cRLNumber did not go down (${numberBefore} -> ${crl.number})`);

  await a.stop();
  a = await startPostern(dir, env);
  t.equal((await readyz(a)).status, 503, "a restarted replica fails closed too");
  t.equal((await accepted(a, "demo-client")).ok, false, "and refuses the revoked certificate");
  t.ok((await crlOf(a)).number > numberBefore, "its CRL number is above any published before");
  const issue = await postern(dir, env, ["token", "create", "--id", "spiffe://postern.local/client/x", ...adminFlags(certs, a.adminPort)]);
  t.match(issue.stderr, /503 pki-state-lost/, "nothing is issued while the state is lost");

  const restored = await postern(dir, env, ["pki", "restore", "--file", backup]);
  t.equal(restored.code, 0, restored.stderr);
  t.match(restored.stdout, /5 certificates added, 1 revocations applied/);
  await eventually("both replicas are ready again", async () => (await readyz(a)).status === 200 && (await readyz(b)).status === 200);
  t.equal((await accepted(a, "demo-client")).ok, false, "the certificate is still refused after the restore");
  t.equal((await accepted(b, "demo-client")).ok, false);
  t.equal((await accepted(a, "admin")).status, 403, "the data plane answers again (admin may not post messages)");
  const ocsp = await runTool("sh", ["-c", `openssl x509 -in ${certs}/demo-client.crt > ${dir}/demo-leaf.pem && openssl ocsp -issuer ${certs}/issuing-ca.crt -cert ${dir}/demo-leaf.pem -url ${a.publicUrl}/ocsp -CAfile ${certs}/ca-bundle.pem`]);
  t.match(ocsp.stdout, /demo-leaf\.pem: revoked/);
  t.match(ocsp.stdout, /Reason: keyCompromise/);
  t.ok((await crlOf(b)).number > numberBefore, "the number never went down");
});

t.test("an older backup is refused unless --force", async (t) => {
  const backup = join(dir, "backup.pki");
  // A certificate issued and revoked after the backup makes the backup older than the ledger.
  const admin = new AdminClient({ url: `https://127.0.0.1:${a.adminPort}`, cert: await readFile(join(certs, "admin.crt")), key: await readFile(join(certs, "admin.key")), ca: await readFile(join(certs, "ca-bundle.pem")) });
  t.teardown(() => admin.close());
  const csr = createCsr({ privateKey: (await generateKeyPair("P-256")).privateKey, identity: "spiffe://postern.local/client/late" });
  const issued = (await admin.call("POST", "/v1/certificates", { csr })) as { serial: string };
  await admin.call("POST", `/v1/certificates/${issued.serial}/revoke`, { reason: "superseded" });
  const older = await postern(dir, env, ["pki", "restore", "--file", backup]);
  t.equal(older.code, 1);
  t.match(older.stderr, /postern pki: the backup \(.*\) is older than the trust ledger .*lacks 1 certificate\(s\) and 1 revocation\(s\) .*pass --force/);
  t.notMatch(older.stderr, /\n\s+at /, "no stack trace");
  const wrong = await postern(dir, { ...env, POSTERN_CA_PASSPHRASE: "not the passphrase at all" }, ["pki", "restore", "--file", backup]);
  t.equal(wrong.code, 1);
  t.match(wrong.stderr, /wrong CA passphrase|cannot decrypt/);
  const forced = await postern(dir, env, ["pki", "restore", "--file", backup, "--force"]);
  t.equal(forced.code, 0, forced.stderr);
  t.match(forced.stdout, /0 certificates added/, "a restore never takes anything away");
  t.equal((await readyz(a)).status, 200, "nothing was lost, so nothing is refused");
  const ocsp = await runTool("sh", ["-c", `openssl x509 -in ${certs}/demo-client.crt > ${dir}/demo-leaf2.pem && openssl ocsp -issuer ${certs}/issuing-ca.crt -cert ${dir}/demo-leaf2.pem -url ${a.publicUrl}/ocsp -CAfile ${certs}/ca-bundle.pem`]);
  t.match(ocsp.stdout, /demo-leaf2\.pem: revoked/, "revocations are still there");
});

t.test("Redis unreachable at start: the error names Redis, the process exits, nothing is written", async (t) => {
  const empty = await mkdtemp(join(tmpdir(), "postern-noredis-"));
  t.teardown(() => rm(empty, { recursive: true, force: true }));
  const url = `redis://127.0.0.1:${await freePort()}`;
  const result = await failedStart(empty, { POSTERN_REDIS_URL: url });
  t.equal(result.code, 1);
  t.match(result.stderr, new RegExp(`cannot start: cannot reach Redis at ${url.replace(/\//g, "\\/")}: .*ECONNREFUSED`));
  t.same(await fileHashes(empty), {}, "no PKI was created");
});
