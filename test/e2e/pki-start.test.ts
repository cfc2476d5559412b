/**
 * The PKI at start, embedded mode, real processes: a first start puts every certificate on
 * record (OCSP good for the server certificate, bootstrap issuances audited); a second start
 * on the same directories changes no byte; a revocation survives a restart and kill -9,
 * including one interrupted between the trust ledger and the store.
 */
import { X509Certificate } from "node:crypto";
import { appendFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { identityFromCertificate } from "../../src/pki/identity.js";
import { keyHashOfCertificate } from "../../src/pki/keys/key-hash.js";
import { freePort } from "../helpers/net.js";
import { runTool } from "../helpers/process.js";
import { adminFlags, failedStart, fileHashes, postern, startPostern, type PosternProcess } from "../helpers/postern-process.js";
import { demoClient } from "../helpers/replica.js";

t.setTimeout(600_000);

const dir = await mkdtemp(join(tmpdir(), "postern-pki-start-"));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const certs = join(dir, "certs");
const env = {};
let gw: PosternProcess = await startPostern(dir, env);
t.teardown(() => gw.stop());

const serialOf = async (file: string) => identityFromCertificate(new X509Certificate(await readFile(join(certs, file)))).serial;
const leafOnly = async (file: string) => {
  const path = join(dir, `${file}.leaf.pem`);
  await writeFile(path, new X509Certificate(await readFile(join(certs, file))).toString());
  return path;
};
const ocsp = async (file: string) =>
  runTool("openssl", ["ocsp", "-issuer", join(certs, "issuing-ca.crt"), "-cert", await leafOnly(file), "-url", `${gw.publicUrl}/ocsp`, "-CAfile", join(certs, "ca-bundle.pem")]);

/** Whether the demo certificate still gets a 202 from the running gateway. */
async function demoAccepted(): Promise<boolean> {
  const client = await demoClient(certs, gw.dataPort);
  try {
    return (await client.send("/v1/messages/orders", "{}")).status === 202;
  } catch {
    return false; // the handshake was refused
  } finally {
    await client.close();
  }
}

t.test("a first start: openssl ocsp says good for the server certificate; audit verify counts the bootstrap issuances", async (t) => {
  const server = await ocsp("server.crt");
  t.match(server.stdout + server.stderr, /Response verify OK/);
  t.match(server.stdout, /server\.crt\.leaf\.pem: good/, "the server certificate is in the inventory");
  const audit = await postern(dir, env, ["audit", "verify", "--file", join(dir, "data", "audit.jsonl")]);
  t.equal(audit.code, 0, audit.stderr);
  t.match(audit.stdout, /^ok, \d+ lines, head [0-9a-f]{64}\n/);
  t.match(audit.stdout, /\n +5 +certificate\.bootstrap\n/, "root, issuing, server, demo and admin");
  const listed = await postern(dir, env, ["cert", "list", "--all", "--json", ...adminFlags(certs, gw.adminPort)]);
  t.equal(listed.code, 0, listed.stderr);
  const profiles = (JSON.parse(listed.stdout) as { items: Array<{ profile: string }> }).items.map((i) => i.profile).sort();
  t.same(profiles, ["admin", "client", "issuing-ca", "root-ca", "server"]);
});

t.test("a second start on the same directories exits non-zero and changes no byte under certs/", async (t) => {
  const before = await fileHashes(certs);
  // Other ports, as a second instance would have (and so another default public base URL).
  const second = await failedStart(dir, { ...env, POSTERN_DATA_PORT: String(await freePort()), POSTERN_ADMIN_PORT: String(await freePort()), POSTERN_PUBLIC_PORT: String(await freePort()) });
  t.not(second.code, 0);
  t.match(second.stderr, /cannot start: PKI store is in use by process \d+/);
  t.notMatch(second.stderr, /\n\s+at /, "no stack trace");
  t.same(await fileHashes(certs), before, "every file under certs/ is byte-identical");
  t.equal((await ocsp("demo-client.crt")).stdout.includes(": good"), true, "and the running gateway is unaffected");
});

t.test("a revoked certificate stays refused after a restart and after kill -9 right after the revocation", async (t) => {
  t.equal(await demoAccepted(), true, "the demo certificate works before");
  const revoked = await postern(dir, env, ["cert", "revoke", "--serial", await serialOf("demo-client.crt"), "--reason", "keyCompromise", ...adminFlags(certs, gw.adminPort)]);
  t.equal(revoked.code, 0, revoked.stderr);
  await gw.kill9();
  gw = await startPostern(dir, env);
  t.equal(await demoAccepted(), false, "refused after kill -9");
  t.match((await ocsp("demo-client.crt")).stdout, /: revoked/);
  await gw.stop();
  gw = await startPostern(dir, env);
  t.equal(await demoAccepted(), false, "refused after a clean restart");
});

t.test("a revocation cut off between the trust ledger and the store (kill -9 mid-revocation) is completed at start", async (t) => {
  // What a kill -9 leaves when it lands between the two writes: the ledger line, not the store's.
  await gw.stop();
  const admin = await readFile(join(certs, "admin.crt"), "utf8");
  const serial = await serialOf("admin.crt");
  const line = { t: "revoke", serial, reason: "keyCompromise", atMs: Date.now(), key: keyHashOfCertificate(admin) };
  await appendFile(join(certs, "state", "ledger.jsonl"), JSON.stringify(line) + "\n");
  gw = await startPostern(dir, env);
  const answer = await ocsp("admin.crt");
  t.match(answer.stdout, /: revoked/, "the responder says revoked");
  t.match(answer.stdout, /Reason: keyCompromise/);
  const audit = await readFile(join(dir, "data", "audit.jsonl"), "utf8");
  t.match(audit, new RegExp(`"action":"certificate\\.revoke\\.completed","subject":"${serial}"`), "the completion is audited");
  const crl = await runTool("sh", ["-c", `curl -s ${gw.publicUrl}/crl.pem | openssl crl -noout -text`]);
  t.match(crl.stdout.toUpperCase(), serial.toUpperCase(), "and listed in the CRL");
});

t.test("built-in certificates are re-issued only by the explicit, audited pki reissue (new keys, old ones superseded)", async (t) => {
  const running = await postern(dir, env, ["pki", "reissue"]);
  t.equal(running.code, 1, "refused while the gateway runs (embedded mode)");
  t.match(running.stderr, /stop Postern first/);
  await gw.stop();
  const oldServer = await serialOf("server.crt");
  const oldKey = await readFile(join(certs, "demo-client.key"), "utf8");
  const result = await postern(dir, env, ["pki", "reissue", "--public-base-url", "http://postern.test:9464"]);
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /re-issued server with a new key[\s\S]*re-issued demo[\s\S]*re-issued admin[\s\S]*revoked as superseded: .*/);
  t.not(await readFile(join(certs, "demo-client.key"), "utf8"), oldKey, "a new key");
  t.match(new X509Certificate(await readFile(join(certs, "server.crt"))).infoAccess, /OCSP - URI:http:\/\/postern\.test:9464\/ocsp/);
  const refused = await failedStart(dir, { POSTERN_PUBLIC_BASE_URL: "http://127.0.0.1:0" });
  t.not(refused.code, 0, "a start still asking for the old URL explicitly is refused");
  t.match(refused.stderr, /names the public base URL http:\/\/postern\.test:9464/);
  gw = await startPostern(dir, { POSTERN_PUBLIC_BASE_URL: "http://postern.test:9464" });
  t.equal(await demoAccepted(), true, "the new demo certificate works");
  const audit = await readFile(join(dir, "data", "audit.jsonl"), "utf8");
  t.equal(audit.match(/"action":"certificate\.reissue"/g)?.length, 3, "each re-issue is audited");
  t.match(audit, new RegExp(`"action":"certificate\\.revoke","subject":"${oldServer}","details":\\{"reason":"superseded"`), "the replaced server certificate (still valid) is revoked as superseded");
});
