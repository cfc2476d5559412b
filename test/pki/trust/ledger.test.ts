import t from "tap";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TrustLedger, ledgerPkiId, setAsideForeignLedger } from "../../../src/pki/trust/ledger.js";

const root = mkdtempSync(join(tmpdir(), "postern-ledger-"));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `d${++n}`, "ledger.jsonl");
const ID = "a".repeat(64);
const T0 = Date.UTC(2030, 0, 1);

t.test("opening writes nothing; the first append writes the init line first; reopen reads it all", async (t) => {
  const path = fresh();
  const ledger = await TrustLedger.open(path, ID);
  t.notOk(existsSync(path));
  await ledger.recordCertificates([{ serial: "0a01", fingerprint: "fp1" }, { serial: "0a02", fingerprint: "fp2" }]);
  await ledger.recordRevocation({ serial: "0a02", reason: "keyCompromise", revokedAtMs: T0 }, "k2");
  await ledger.recordCrlNumber(7n);
  await ledger.recordCrlNumber(5n); // lower: nothing to record
  const lines = readFileSync(path, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { t: string });
  t.same(lines.map((l) => l.t), ["init", "cert", "cert", "revoke", "crl"]);
  const again = await TrustLedger.open(path, ID);
  t.same([...again.state.certificates.keys()], ["0a01", "0a02"]);
  t.same(again.state.revocations.get("0a02"), { serial: "0a02", reason: "keyCompromise", revokedAtMs: T0, key: "k2" });
  t.ok(again.state.revokedKeys.has("k2"));
  t.equal(again.state.crlHighWater, 7n);
  t.equal(await ledgerPkiId(path), ID);
});

t.test("the first revocation of a serial wins; a repeated one is not written", async (t) => {
  const path = fresh();
  const ledger = await TrustLedger.open(path, ID);
  await ledger.recordRevocation({ serial: "0b01", reason: "superseded", revokedAtMs: T0 }, "k");
  await ledger.recordRevocation({ serial: "0b01", reason: "keyCompromise", revokedAtMs: T0 + 1 }, "k");
  t.equal(ledger.state.revocations.get("0b01")?.reason, "superseded");
  t.equal(readFileSync(path, "utf8").trim().split("\n").length, 2);
});

t.test("several writers on one file: each sees the others' lines, nothing is lost or torn", async (t) => {
  const path = fresh();
  const writers = await Promise.all([TrustLedger.open(path, ID), TrustLedger.open(path, ID), TrustLedger.open(path, ID)]);
  await Promise.all(
    Array.from({ length: 60 }, (_, i) => writers[i % 3]!.recordCertificates([{ serial: (0x1000 + i).toString(16), fingerprint: `fp${i}` }])),
  );
  for (const w of writers) await w.refresh();
  for (const w of writers) t.equal(w.state.certificates.size, 60, "every writer sees all 60");
  const text = readFileSync(path, "utf8");
  t.equal(text.match(/"t":"init"/g)?.length, 1, "one init line, whoever wrote first");
  t.notOk(existsSync(`${path}.lock`));
});

t.test("a torn last line (crash mid-append) is ignored, then cut off by the next append", async (t) => {
  const path = fresh();
  const ledger = await TrustLedger.open(path, ID);
  await ledger.recordCertificates([{ serial: "0c01", fingerprint: "fp" }]);
  appendFileSync(path, '{"t":"cert","serial":"0c0');
  const reopened = await TrustLedger.open(path, ID);
  t.same([...reopened.state.certificates.keys()], ["0c01"]);
  await reopened.recordCertificates([{ serial: "0c02", fingerprint: "fp" }]);
  const again = await TrustLedger.open(path, ID);
  t.same([...again.state.certificates.keys()], ["0c01", "0c02"]);
});

t.test("another CA's ledger is refused, and can be set aside; a damaged line fails the open", async (t) => {
  const path = fresh();
  await (await TrustLedger.open(path, ID)).recordCrlNumber(1n);
  await t.rejects(TrustLedger.open(path, "b".repeat(64)), { code: "conflict", message: /belongs to another CA/ });
  const aside = await setAsideForeignLedger(path, ID);
  t.ok(existsSync(aside));
  t.notOk(existsSync(path));
  t.equal((await TrustLedger.open(path, "b".repeat(64))).state.certificates.size, 0);
  writeFileSync(path, '{"t":"init","pkiId":"' + ID + '","at":0}\nnot json\n');
  await t.rejects(TrustLedger.open(path, ID), { code: "internal", message: /damaged/ });
});

t.test("accepted losses and revocations other replicas made", async (t) => {
  const path = fresh();
  const ledger = await TrustLedger.open(path, ID);
  await ledger.recordCertificates([{ serial: "0d01", fingerprint: "a" }, { serial: "0d02", fingerprint: "b" }]);
  await ledger.acceptLoss(["0d01"], "cli", T0);
  t.same(ledger.state.expectedCertificates(), ["0d02"]);
  ledger.noteRevocation({ serial: "0d02", reason: "keyCompromise", revokedAtMs: T0 }, "kk");
  t.ok(ledger.state.revokedKeys.has("kk"), "kept in memory");
  t.notMatch(readFileSync(path, "utf8"), /"t":"revoke"/, "the replica that revoked wrote the line, not this one");
});
