import t, { type Test } from "tap";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStore } from "../../../src/pki/store/file-store.js";
import { TrustGuard, type TrustStatus } from "../../../src/pki/trust/guard.js";
import { TrustLedger } from "../../../src/pki/trust/ledger.js";
import { certRecord } from "../store/store-contract.js";

const T0 = Date.UTC(2030, 0, 1);

async function setup(t: Test) {
  const dir = mkdtempSync(join(tmpdir(), "postern-guard-"));
  const store = await FileStore.open(join(dir, "store"));
  const ledger = await TrustLedger.open(join(dir, "state", "ledger.jsonl"), "c".repeat(64));
  const audited: string[] = [];
  const changes: TrustStatus[] = [];
  const guard = new TrustGuard({
    ledger,
    store,
    audit: { append: async (e) => (audited.push(`${e.action} ${e.subject}`), { ...e, seq: 0, at: "", prev: "", details: {} }) },
    storeName: "the test store",
    now: () => T0,
    onChange: (s) => changes.push(s),
  });
  t.teardown(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  /** Issues a certificate as the CA does: ledger first, then store. */
  const issue = async (serial: string) => {
    await ledger.recordCertificates([{ serial, fingerprint: certRecord(serial).fingerprint }]);
    await store.putCertificate(certRecord(serial));
  };
  return { dir, store, ledger, guard, audited, changes, issue };
}

t.test("intact while the store holds everything the ledger recorded", async (t) => {
  const { guard, issue, store, ledger } = await setup(t);
  await issue("0a01");
  await ledger.recordRevocation({ serial: "0a01", reason: "keyCompromise", revokedAtMs: T0 }, "k");
  await store.revoke("0a01", "keyCompromise", T0);
  t.match(await guard.check(), { intact: true });
  t.doesNotThrow(() => guard.assertIntact());
});

t.test("a store that lost certificates and revocations: lost, named, refused; back when restored", async (t) => {
  const { dir, guard, issue, ledger, changes } = await setup(t);
  await issue("0b01");
  await issue("0b02");
  await ledger.recordRevocation({ serial: "0b02", reason: "keyCompromise", revokedAtMs: T0 }, "k");
  // An emptied store: a new, empty one in its place.
  const empty = await FileStore.open(join(dir, "other"));
  t.teardown(() => empty.close());
  const lostGuard = new TrustGuard({ ledger, store: empty, audit: { append: async () => ({}) as never }, storeName: "Redis redis://x (key prefix p:)", now: () => T0, onChange: (s) => changes.push(s) });
  const status = await lostGuard.check();
  t.match(status, { intact: false, lostCertificates: ["0b01", "0b02"], lostRevocations: [{ serial: "0b02", reason: "keyCompromise" }] });
  t.match((status as { summary: string }).summary, /PKI state lost: Redis redis:\/\/x \(key prefix p:\) lacks 2 certificate\(s\) and 1 revocation\(s\) recorded in the trust ledger .*e\.g\. revoked 0b02 \(keyCompromise\)/);
  t.throws(() => lostGuard.assertIntact(), { code: "pki-state-lost", status: 503 });
  t.equal(changes.length, 1, "the flip is reported once");
  await empty.putCertificate(certRecord("0b01"));
  await empty.putCertificate(certRecord("0b02", { status: "revoked", revokedAtMs: T0, revocationReason: "keyCompromise" }));
  t.match(await lostGuard.quickCheck(), { intact: true }, "restored: intact again");
  t.equal(changes.length, 2);
  t.match(await guard.check(), { intact: true });
});

t.test("a revocation in the ledger that never reached the store (kill -9) is completed and audited", async (t) => {
  const { guard, issue, ledger, store, audited } = await setup(t);
  await issue("0c01");
  await ledger.recordRevocation({ serial: "0c01", reason: "keyCompromise", revokedAtMs: T0 + 5 }, "k");
  t.match(await guard.check(), { intact: true });
  t.match(await store.getCertificate("0c01"), { status: "revoked", revocationReason: "keyCompromise", revokedAtMs: T0 + 5 });
  t.same(audited, ["certificate.revoke.completed 0c01"]);
});

t.test("certificates an operator accepted as lost no longer count", async (t) => {
  const { guard, ledger } = await setup(t);
  await ledger.recordCertificates([{ serial: "0d01", fingerprint: "x" }]);
  t.match(await guard.check(), { intact: false });
  await ledger.acceptLoss(["0d01"], "cli", T0);
  t.match(await guard.check(), { intact: true });
});

t.test("quickCheck compares counts and runs the full check only when they fall short", async (t) => {
  const { guard, issue, store } = await setup(t);
  await issue("0e01");
  t.match(await guard.quickCheck(), { intact: true });
  await store.putCertificate(certRecord("0e99")); // more than the ledger knows is fine
  t.match(await guard.quickCheck(), { intact: true });
});
