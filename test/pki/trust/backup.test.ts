import t, { type Test } from "tap";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openArchive, sealArchive, type PkiArchive } from "../../../src/pki/trust/backup-archive.js";
import { restoreBackup, takeBackup } from "../../../src/pki/trust/backup.js";
import { FileStore } from "../../../src/pki/store/file-store.js";
import { TrustLedger } from "../../../src/pki/trust/ledger.js";
import { certRecord, tokenRecord } from "../store/store-contract.js";

const T0 = Date.UTC(2030, 0, 1);
const ID = "e".repeat(64);
const PASS = "correct horse battery staple";
const audit = { append: async () => ({}) as never };

async function pki(t: Test) {
  const dir = mkdtempSync(join(tmpdir(), "postern-backup-"));
  const store = await FileStore.open(join(dir, "store"));
  const ledger = await TrustLedger.open(join(dir, "ledger.jsonl"), ID);
  t.teardown(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const issue = async (serial: string, revoked = false) => {
    await ledger.recordCertificates([{ serial, fingerprint: certRecord(serial).fingerprint }]);
    await store.putCertificate(certRecord(serial));
    if (revoked) {
      await ledger.recordRevocation({ serial, reason: "keyCompromise", revokedAtMs: T0 }, `key-${serial}`);
      await store.revoke(serial, "keyCompromise", T0);
    }
  };
  return { dir, store, ledger, issue };
}

t.test("sealed with the CA passphrase: opens with it, not without it, not once changed", async (t) => {
  const archive: PkiArchive = {
    format: "postern-pki-backup", v: 1, createdAt: new Date(T0).toISOString(), pkiId: ID,
    certificates: [certRecord("0a01")], tokens: [tokenRecord()], crl: null,
    ledger: { certificates: 1, revocations: 0, crlHighWater: "0" }, auditHead: null,
  };
  const sealed = sealArchive(archive, PASS);
  t.notMatch(sealed.toString(), /spiffe|0a01|BEGIN CERTIFICATE/, "nothing readable inside");
  t.match(JSON.parse(sealed.toString()), { format: "postern-pki-backup", cipher: "aes-256-gcm", kdf: { name: "scrypt" } });
  t.same(openArchive(sealed, PASS), archive);
  t.throws(() => openArchive(sealed, "another passphrase"), { code: "bad-request", message: /wrong CA passphrase, or the file was changed/ });
  const envelope = JSON.parse(sealed.toString()) as { kdf: { N: number } };
  envelope.kdf.N = 1 << 14; // a changed header is caught too (authenticated as AAD)
  t.throws(() => openArchive(Buffer.from(JSON.stringify(envelope)), PASS), { code: "bad-request" });
  t.throws(() => openArchive(Buffer.from("hello"), PASS), { code: "bad-request", message: /not a Postern PKI backup/ });
});

t.test("backup then restore into an empty store brings back certificates, revocations, tokens and the CRL number", async (t) => {
  const a = await pki(t);
  await a.issue("0b01");
  await a.issue("0b02", true);
  const live = tokenRecord({ expiresAtMs: Date.now() + 3600_000 });
  await a.store.putToken(live);
  await a.ledger.recordCrlNumber(9n);
  await a.store.putCrlState({ crlNumber: 9n, thisUpdateMs: T0, nextUpdateMs: T0 + 1, digest: "d" });
  const archive = openArchive(sealArchive(await takeBackup({ store: a.store, ledger: a.ledger, auditHead: null, now: Date.now }), PASS), PASS);
  t.equal(archive.certificates.length, 2);
  t.same(archive.tokens, [live]);
  t.match(archive.crl, { crlNumber: "9" });

  const empty = await FileStore.open(join(a.dir, "emptied"));
  t.teardown(() => empty.close());
  const report = await restoreBackup({ archive, store: empty, ledger: a.ledger, audit, force: false, actor: "test", now: Date.now });
  t.match(report, { certificatesAdded: 2, revocationsApplied: 1, tokensAdded: 1, acceptedLost: [] });
  t.equal((await empty.getCertificate("0b02"))?.status, "revoked");
  t.ok(await empty.peekToken(live.tokenHash, Date.now()));
  t.equal((await empty.getCrlState())?.crlNumber, 9n, "the CRL number is back (never lower)");
  const again = await restoreBackup({ archive, store: empty, ledger: a.ledger, audit, force: false, actor: "test", now: Date.now });
  t.match(again, { certificatesAdded: 0, revocationsApplied: 0 }, "restoring twice changes nothing");
});

t.test("an archive older than the ledger is refused unless forced; forced, the rest is accepted as lost and revocations stay", async (t) => {
  const a = await pki(t);
  await a.issue("0c01");
  const old = await takeBackup({ store: a.store, ledger: a.ledger, auditHead: null, now: Date.now });
  await a.issue("0c02");
  await a.ledger.recordRevocation({ serial: "0c01", reason: "keyCompromise", revokedAtMs: T0 }, "k");
  await a.store.revoke("0c01", "keyCompromise", T0);
  const empty = await FileStore.open(join(a.dir, "emptied"));
  t.teardown(() => empty.close());
  await t.rejects(restoreBackup({ archive: old, store: empty, ledger: a.ledger, audit, force: false, actor: "test", now: Date.now }), {
    code: "conflict",
    message: /older than the trust ledger .*lacks 1 certificate\(s\) and 1 revocation\(s\) recorded since \(revoked 0c01, 0c02\)/,
  });
  t.same(await empty.counts(), { certificates: 0, revoked: 0 }, "nothing written by a refused restore");
  const forced = await restoreBackup({ archive: old, store: empty, ledger: a.ledger, audit, force: true, actor: "test", now: Date.now });
  t.same(forced.acceptedLost, ["0c02"]);
  t.equal((await empty.getCertificate("0c01"))?.status, "revoked", "the ledger's revocation wins over the older archive");
  t.ok(a.ledger.state.accepted.has("0c02"));
  const foreign = { ...old, pkiId: "f".repeat(64) };
  await t.rejects(restoreBackup({ archive: foreign, store: empty, ledger: a.ledger, audit, force: true, actor: "test", now: Date.now }), { code: "conflict", message: /another CA/ });
});
