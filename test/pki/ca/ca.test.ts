import t, { type Test } from "tap";
import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { initCa, loadCa } from "../../../src/pki/ca/ca.js";
import { issueLeafDer } from "../../../src/pki/issue/issue.js";
import { spkiOf, type KeyAlgorithm } from "../../../src/pki/keys/keys.js";
import { x509 } from "../../../src/pki/der/x509.js";

t.setTimeout(180_000);
const run = promisify(execFile);

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "postern-ca-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const DAY = 86_400_000;

for (const keyAlgorithm of ["P-256", "P-384", "Ed25519", "RSA-2048"] as KeyAlgorithm[]) {
  t.test(`a ${keyAlgorithm} CA issues leaves openssl verifies`, async (t) => {
    const dir = await tempDir(t);
    const now = Date.now();
    const ca = await initCa({ dir, keyAlgorithm, passphrase: "ca test passphrase", now: () => now });
    const root = ca.root.cert;
    t.ok(await root.isSelfSigned(), "root is self-signed");
    t.equal(root.getExtension(x509.BasicConstraintsExtension)?.pathLength, 1);
    t.equal(ca.issuer.cert.getExtension(x509.BasicConstraintsExtension)?.pathLength, 0);
    t.equal(ca.issuer.cert.getExtension(x509.BasicConstraintsExtension)?.ca, true);
    t.equal(root.notAfter.getTime(), Math.floor((now + 3650 * DAY) / 1000) * 1000, "root 10 years");
    t.equal(ca.issuer.cert.notAfter.getTime(), Math.floor((now + 1825 * DAY) / 1000) * 1000, "issuing 5 years");
    const leaf = issueLeafDer({
      issuer: ca.issuer, spki: spkiOf(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey),
      identity: "spiffe://postern.local/client/x", roles: ["client"], lifetimeSeconds: 600, usage: "client",
    });
    await writeFile(join(dir, "leaf.crt"), leaf.pem);
    const { stdout } = await run("openssl", ["verify", "-x509_strict", "-purpose", "sslclient", "-CAfile", join(dir, "root-ca.crt"), "-untrusted", join(dir, "issuing-ca.crt"), join(dir, "leaf.crt")]);
    t.match(stdout, /: OK/);
    const loaded = await loadCa(dir, "ca test passphrase");
    t.equal(loaded.rootCertPem, ca.rootCertPem);
    const again = issueLeafDer({ issuer: loaded.issuer, spki: spkiOf(generateKeyPairSync("ed25519").publicKey), identity: "y", lifetimeSeconds: 60, usage: "client" });
    t.ok(await new x509.X509Certificate(again.der).verify({ publicKey: ca.issuer.cert.publicKey, signatureOnly: true }), "loaded key signs");
  });
}

t.test("custom subjects and lifetimes; keys are encrypted 0600", async (t) => {
  const dir = await tempDir(t);
  const ca = await initCa({
    dir, passphrase: "ca test passphrase", rootSubject: "CN=Acme Root, O=Acme", issuingSubject: "CN=Acme Issuing, O=Acme",
    rootLifetimeDays: 30, issuingLifetimeDays: 60,
  });
  t.match(ca.root.cert.subject, /CN=Acme Root/);
  t.match(ca.issuer.cert.subject, /CN=Acme Issuing/);
  t.equal(ca.issuer.cert.issuer, ca.root.cert.subject);
  t.ok(ca.issuer.cert.notAfter.getTime() <= ca.root.cert.notAfter.getTime(), "issuing CA never outlives the root");
  for (const f of ["root-ca.key", "issuing-ca.key"]) {
    t.equal((await stat(join(dir, f))).mode & 0o777, 0o600);
    t.match(await readFile(join(dir, f), "utf8"), /ENCRYPTED PRIVATE KEY/);
    const { stdout } = await run("openssl", ["pkey", "-in", join(dir, f), "-passin", "pass:ca test passphrase", "-noout", "-text_pub"]);
    t.ok(stdout.length > 0, `${f} opens with openssl and the passphrase`);
  }
  await t.rejects(initCa({ dir, passphrase: "ca test passphrase", rootSubject: "not a name" }), { code: "bad-request" });
});

t.test("a leaf of another CA does not verify (deny path)", async (t) => {
  const a = await tempDir(t);
  const b = await tempDir(t);
  await initCa({ dir: a, passphrase: "ca test passphrase" });
  const other = await initCa({ dir: b, passphrase: "ca test passphrase" });
  const leaf = issueLeafDer({ issuer: other.issuer, spki: spkiOf(generateKeyPairSync("ed25519").publicKey), identity: "z", lifetimeSeconds: 60, usage: "client" });
  await writeFile(join(a, "foreign.crt"), leaf.pem);
  await t.rejects(run("openssl", ["verify", "-CAfile", join(a, "root-ca.crt"), "-untrusted", join(a, "issuing-ca.crt"), join(a, "foreign.crt")]));
  await t.rejects(loadCa(a, "wrong passphrase!"), { code: "internal" });
});
