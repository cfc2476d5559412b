import t from "tap";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createSecureContext } from "node:tls";
import { buildCrl, buildRootCrl, CrlEntryCache, encodeCrlEntry } from "../../../src/pki/status/crl.js";
import type { RevokedEntry } from "../../../src/pki/store/store.js";
import { x509 } from "../../../src/pki/der/x509.js";
import { mintTestPki, openssl, type KeyKind } from "./crl-fixture.js";

const NOW = Date.now();
const DAY = 24 * 3600_000;

for (const kind of ["P-256", "P-384", "Ed25519", "RSA"] as const satisfies readonly KeyKind[]) {
  t.test(`${kind} issuer: openssl parses the CRL, rejects the revoked leaf, accepts the valid one`, async (t) => {
    const pki = await mintTestPki(kind);
    t.teardown(pki.cleanup);
    const revoked = await pki.issueLeaf("00ff01"); // top bit set: the serial carries a 00 byte
    const valid = await pki.issueLeaf();
    t.equal(revoked.serial, "00ff01");
    const crl = buildCrl({
      issuer: pki.issuing,
      entries: [{ serial: revoked.serial, revokedAtMs: NOW - 60_000, reason: "keyCompromise" }],
      crlNumber: 42n,
      thisUpdateMs: NOW - 60_000,
      nextUpdateMs: NOW + DAY,
    });
    t.match(crl.pem, /^-----BEGIN X509 CRL-----\n/);
    const crlPath = join(pki.dir, "issuing.crl.pem");
    writeFileSync(crlPath, crl.pem);
    const text = openssl(["crl", "-in", crlPath, "-noout", "-text"]);
    t.equal(text.code, 0, text.stderr);
    t.match(text.stdout, /X509v3 CRL Number: \n\s+42/);
    t.match(text.stdout, /Authority Key Identifier/);
    t.match(text.stdout, /Serial Number: FF01[\s\S]*Key Compromise/);
    t.equal(openssl(["crl", "-in", crlPath, "-noout", "-CAfile", pki.bundlePath]).code, 0, "signature verifies");

    const bad = openssl(["verify", "-crl_check", "-CAfile", pki.bundlePath, "-CRLfile", crlPath, revoked.path]);
    t.not(bad.code, 0);
    t.match(bad.stdout + bad.stderr, /certificate revoked/);
    const good = openssl(["verify", "-crl_check", "-CAfile", pki.bundlePath, "-CRLfile", crlPath, valid.path]);
    t.equal(good.code, 0, good.stderr);
    t.match(good.stdout, /: OK/);

    // With the root's (empty) CRL, the whole chain checks too (-crl_check_all).
    const rootCrl = buildRootCrl({ root: pki.root, crlNumber: 1n, nowMs: NOW });
    const both = join(pki.dir, "both.crl.pem");
    writeFileSync(both, crl.pem + rootCrl.pem);
    const all = openssl(["verify", "-crl_check_all", "-CAfile", pki.bundlePath, "-CRLfile", both, valid.path]);
    t.equal(all.code, 0, all.stderr);
    t.doesNotThrow(() => createSecureContext({ ca: [pki.root.pem, pki.issuing.pem], crl: [crl.pem, rootCrl.pem] }));
  });
}

t.test("an empty CRL omits revokedCertificates; x509 parses and verifies our DER", async (t) => {
  const pki = await mintTestPki("P-256");
  t.teardown(pki.cleanup);
  const root = buildRootCrl({ root: pki.root, crlNumber: 7n, nowMs: NOW });
  t.equal(root.nextUpdateMs - Math.floor(NOW / 1000) * 1000, 365 * DAY);
  const path = join(pki.dir, "root.crl.pem");
  writeFileSync(path, root.pem);
  t.match(openssl(["crl", "-in", path, "-noout", "-text"]).stdout, /No Revoked Certificates/);
  const parsed = new x509.X509Crl(root.der);
  t.ok(await parsed.verify({ publicKey: pki.root.cert.publicKey }));
  t.equal(parsed.issuer, pki.root.cert.subject);
});

t.test("10k entries build fast and openssl still verifies", async (t) => {
  const pki = await mintTestPki("P-256");
  t.teardown(pki.cleanup);
  const revoked = await pki.issueLeaf();
  const entries: RevokedEntry[] = Array.from({ length: 10_000 }, (_, i) => ({
    serial: (0x10000000 + i).toString(16) + "a1b2c3d4e5f6a7b8c9d0e1f2",
    revokedAtMs: NOW - i * 1000,
    reason: i % 2 === 0 ? "superseded" : "unspecified",
  }));
  entries.push({ serial: revoked.serial, revokedAtMs: NOW, reason: "keyCompromise" });
  const started = performance.now();
  const crl = buildCrl({ issuer: pki.issuing, entries, crlNumber: 2n, thisUpdateMs: NOW, nextUpdateMs: NOW + DAY });
  const ms = performance.now() - started;
  t.comment(`10k-entry CRL: ${ms.toFixed(0)} ms, ${crl.der.length} bytes`);
  t.ok(ms < 5000);
  const path = join(pki.dir, "big.crl.pem");
  writeFileSync(path, crl.pem);
  const r = openssl(["verify", "-crl_check", "-CAfile", pki.bundlePath, "-CRLfile", path, revoked.path]);
  t.match(r.stdout + r.stderr, /certificate revoked/);
  t.doesNotThrow(() => createSecureContext({ crl: crl.pem }));
});

t.test("CrlEntryCache encodes each serial once and forgets dropped ones", async (t) => {
  const cache = new CrlEntryCache();
  const a: RevokedEntry = { serial: "0a", revokedAtMs: NOW, reason: "keyCompromise" };
  const b: RevokedEntry = { serial: "0b", revokedAtMs: NOW, reason: "unspecified" };
  const first = cache.encodeAll([a, b, { ...a, reason: "superseded" }]);
  t.equal(first.length, 2, "duplicate serial: the first entry wins");
  const second = cache.encodeAll([b, a]);
  t.equal(second[0], first[1], "same bytes object reused");
  t.equal(second[1], first[0]);
  cache.encodeAll([a]);
  t.equal(cache.size, 1);
  t.same(encodeCrlEntry(b).length, encodeCrlEntry(a).length, "unspecified has its reasonCode too, as OCSP states it");
});

t.test("refuses malformed input instead of signing it", async (t) => {
  const pki = await mintTestPki("P-256");
  t.teardown(pki.cleanup);
  const base = { issuer: pki.issuing, crlNumber: 1n, thisUpdateMs: NOW, nextUpdateMs: NOW + DAY };
  t.throws(() => buildCrl({ ...base, entries: [], nextUpdateMs: NOW }), RangeError);
  t.throws(() => buildCrl({ ...base, entries: [], crlNumber: -1n }), RangeError);
  t.throws(() => buildCrl({ ...base, entries: [], crlNumber: 1n << 160n }), RangeError);
  t.throws(() => buildCrl({ ...base, entries: [{ serial: "xyz", revokedAtMs: NOW, reason: "keyCompromise" }] }), RangeError);
  t.throws(() => buildCrl({ ...base, entries: [{ serial: "0a", revokedAtMs: NOW, reason: "bogus" as never }] }), RangeError);
});
