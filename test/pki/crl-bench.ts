/**
 * Bench, not a test: times CRL builds at 10k and 100k entries (cold, then warm through
 * CrlEntryCache with one more revocation) and checks the 100k CRL with openssl.
 * Run: npx tsx test/pki/crl-bench.ts [P-256|P-384|Ed25519|RSA]
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildCrl, CrlEntryCache } from "../../src/pki/crl.js";
import type { RevokedEntry } from "../../src/pki/store.js";
import { mintTestPki, openssl, type KeyKind } from "./crl-fixture.js";

const kind = (process.argv[2] ?? "P-256") as KeyKind;
const pki = await mintTestPki(kind);
const revokedLeaf = await pki.issueLeaf();
const now = Date.now();
for (const n of [10_000, 100_000]) {
  const entries: RevokedEntry[] = Array.from({ length: n }, (_, i) => ({
    serial: "7f" + i.toString(16).padStart(30, "0"),
    revokedAtMs: now - i * 1000,
    reason: i % 3 === 0 ? "keyCompromise" : "superseded",
  }));
  entries.push({ serial: revokedLeaf.serial, revokedAtMs: now, reason: "keyCompromise" });
  const cache = new CrlEntryCache();
  let t0 = performance.now();
  const cold = buildCrl({ issuer: pki.issuing, entries: cache.encodeAll(entries), crlNumber: 1n, thisUpdateMs: now, nextUpdateMs: now + 86_400_000 });
  const coldMs = performance.now() - t0;
  entries.push({ serial: "7e01", revokedAtMs: now, reason: "unspecified" });
  t0 = performance.now();
  buildCrl({ issuer: pki.issuing, entries: cache.encodeAll(entries), crlNumber: 2n, thisUpdateMs: now, nextUpdateMs: now + 86_400_000 });
  const warmMs = performance.now() - t0;
  const path = join(pki.dir, `crl-${n}.pem`);
  writeFileSync(path, cold.pem);
  t0 = performance.now();
  const v = openssl(["verify", "-crl_check", "-CAfile", pki.bundlePath, "-CRLfile", path, revokedLeaf.path]);
  const verifyMs = performance.now() - t0;
  const verdict = /certificate revoked/.test(v.stdout + v.stderr) ? "revoked (as expected)" : `UNEXPECTED: ${v.stdout}${v.stderr}`;
  console.log(`${kind} ${n} entries: cold build ${coldMs.toFixed(0)} ms, warm rebuild +1 ${warmMs.toFixed(0)} ms, ${(cold.der.length / 1e6).toFixed(1)} MB; openssl verify ${verifyMs.toFixed(0)} ms: ${verdict}`);
}
pki.cleanup();
