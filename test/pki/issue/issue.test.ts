import t from "tap";
import { X509Certificate, createHash, generateKeyPairSync, webcrypto } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initCa, type CaMaterial } from "../../../src/pki/ca/ca.js";
import { identityFromCertificate } from "../../../src/pki/identity.js";
import { issueLeafCertificate, issueLeafDer } from "../../../src/pki/issue/issue.js";
import { spkiOf } from "../../../src/pki/keys/keys.js";
import { x509 } from "../../../src/pki/der/x509.js";

t.setTimeout(120_000);

let dir = "";
let ca: CaMaterial;
t.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "postern-issue-"));
  ca = await initCa({ dir, passphrase: "issue test passphrase", env: {} });
});
t.teardown(() => rm(dir, { recursive: true, force: true }));

const ecKey = () => webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);

t.test("a client leaf has the end-entity profile", async (t) => {
  const keys = await ecKey();
  const now = Date.UTC(2026, 5, 1, 12, 0, 0);
  const cert = await issueLeafCertificate({
    issuer: ca.issuer, publicKey: keys.publicKey, identity: "spiffe://postern.local/client/alice", roles: ["client", "ops"],
    lifetimeSeconds: 3600, now: () => now, usage: "client", crlUrl: "http://ca.example/crl", ocspUrl: "http://ca.example/ocsp",
  });
  t.ok(await cert.verify({ publicKey: ca.issuer.cert.publicKey, signatureOnly: true }), "signed by the issuing CA");
  t.equal(cert.notBefore.getTime(), now - 60_000);
  t.equal(cert.notAfter.getTime(), now + 3600_000);
  t.equal(cert.issuer, ca.issuer.cert.subject);
  t.match(cert.subject, /CN=alice/);
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  t.equal(bc?.ca, false);
  t.equal(bc?.critical, true);
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  t.equal(ku?.usages, x509.KeyUsageFlags.digitalSignature);
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  t.same(eku?.usages, [x509.ExtendedKeyUsage.clientAuth]);
  const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension);
  t.equal(aki?.keyId, ca.issuer.cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  const expectedSki = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey);
  t.equal(ski?.keyId, expectedSki.keyId);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  t.same(san?.names.toJSON(), [{ type: "url", value: "spiffe://postern.local/client/alice" }]);
  t.ok(cert.getExtension(x509.CRLDistributionPointsExtension));
  t.ok(cert.getExtension(x509.AuthorityInfoAccessExtension));
  const id = identityFromCertificate(new X509Certificate(new Uint8Array(cert.rawData)));
  t.same(id.roles, ["client", "ops"]);
  t.equal(id.commonName, "alice");
});

t.test("serials are 16 random bytes, positive, and survive x509's normalisation", async (t) => {
  const spki = spkiOf(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey);
  const serials = new Set<string>();
  for (let i = 0; i < 300; i++) {
    const issued = issueLeafDer({ issuer: ca.issuer, spki, identity: `c${i}`, lifetimeSeconds: 60, usage: "client" });
    t.match(issued.serial, /^[0-7][0-9a-f]{31}$/);
    t.not(issued.serial.slice(0, 2), "00");
    serials.add(issued.serial);
    if (i < 5) t.equal(new x509.X509Certificate(issued.der).serialNumber, issued.serial);
  }
  t.equal(serials.size, 300);
});

t.test("server usage, RSA keyEncipherment, names, plain identity", async (t) => {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const issued = issueLeafDer({
    issuer: ca.issuer, spki: spkiOf(rsa.publicKey), identity: "gw.example", dnsNames: ["gw.example", "localhost"],
    ipAddresses: ["127.0.0.1", "::1", "2001:db8::5"], usage: "server", lifetimeSeconds: 3600,
  });
  const cert = new X509Certificate(issued.pem);
  t.ok(cert.checkHost("gw.example"));
  t.ok(cert.checkIP("::1"));
  t.ok(cert.checkIP("2001:db8::5"));
  t.equal(cert.checkHost("other.example"), undefined);
  const parsed = new x509.X509Certificate(issued.der);
  t.equal(parsed.getExtension(x509.KeyUsagesExtension)?.usages, x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
  t.same(parsed.getExtension(x509.ExtendedKeyUsageExtension)?.usages, [x509.ExtendedKeyUsage.serverAuth]);
  const id = identityFromCertificate(cert);
  t.equal(id.id, "gw.example", "no SAN URI: the CN is the identity");
  t.same(id.roles, []);
  t.equal(id.fingerprint, createHash("sha256").update(cert.raw).digest("base64url"));
});

t.test("notAfter never outlives the issuing CA; bad input is bad-request", async (t) => {
  const spki = spkiOf(generateKeyPairSync("ed25519").publicKey);
  const long = issueLeafDer({ issuer: ca.issuer, spki, identity: "x", lifetimeSeconds: 100 * 365 * 86_400, usage: "client" });
  t.equal(long.notAfterMs, ca.issuer.cert.notAfter.getTime());
  for (const bad of [
    { identity: "" }, { identity: "a".repeat(65) }, { identity: "line\nbreak" }, { identity: "x", roles: [""] },
    { identity: "x", lifetimeSeconds: 0 }, { identity: "x", ipAddresses: ["300.1.1.1"] }, { identity: "x", dnsNames: ["é.example"] },
  ]) {
    t.throws(() => issueLeafDer({ issuer: ca.issuer, spki, lifetimeSeconds: 60, usage: "client", ...bad }), { code: "bad-request" }, JSON.stringify(bad));
  }
  t.throws(() => issueLeafDer({ issuer: ca.issuer, spki, identity: "x", lifetimeSeconds: 60, usage: "client", now: () => Date.now() + 6 * 365 * 86_400_000 }), { code: "internal" }, "expired issuing CA");
});

t.test("identity extraction handles quoting, OU arrays and serial encodings", async (t) => {
  const spki = spkiOf(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey);
  const odd = "spiffe://postern.local/client/a,b";
  const issued = issueLeafDer({ issuer: ca.issuer, spki, identity: odd, uris: ["spiffe://postern.local/extra"], dnsNames: ["a.example"], lifetimeSeconds: 60, usage: "client" });
  const cert = new X509Certificate(issued.pem);
  t.equal(identityFromCertificate(cert).id, odd, "a quoted SAN URI is decoded, not split");
  const raw = Buffer.from(issued.der);
  const peerShape = {
    raw, subject: { OU: ["client", "admin"], CN: "op" }, subjectaltname: "DNS:a.example, URI:spiffe://x/y",
    serialNumber: "80AB", valid_to: "Jan  1 00:00:00 2030 GMT",
  };
  const fromPeer = identityFromCertificate(peerShape);
  t.same(fromPeer.roles, ["client", "admin"]);
  t.equal(fromPeer.id, "spiffe://x/y");
  t.equal(fromPeer.serial, "0080ab", "a high first bit gets the DER 00 byte back");
  t.equal(fromPeer.notAfterMs, Date.UTC(2030, 0, 1));
  t.equal(identityFromCertificate({ ...peerShape, serialNumber: "ABC", subjectaltname: undefined }).serial, "0abc");
  t.equal(identityFromCertificate({ ...peerShape, subjectaltname: undefined }).id, "op");
  const stringShape = { raw, subject: "OU=admin\nCN=operator", serialNumber: "01", validTo: "Jan  1 00:00:00 2030 GMT" };
  t.same(identityFromCertificate(stringShape).roles, ["admin"]);
  t.throws(() => identityFromCertificate({ ...stringShape, subject: "O=Acme" }), TypeError, "no identity at all");
});
