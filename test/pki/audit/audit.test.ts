import t from "tap";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AUDIT_GENESIS, AuditLog, auditLineHash, verifyAuditLog } from "../../../src/pki/audit/audit.js";

const dir = mkdtempSync(join(tmpdir(), "postern-audit-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(dir, `audit-${++n}.jsonl`);

/** The verdict without the file list and chain start (tested in audit-rotation.test.ts). */
async function verifyCore(path: string) {
  const r = await verifyAuditLog(path);
  return r.ok ? { ok: r.ok, lines: r.lines, head: r.head, actions: r.actions } : { ok: r.ok, line: r.line, reason: r.reason };
}

async function writeLog(path: string, count: number): Promise<string[]> {
  const log = await AuditLog.open(path, { now: () => Date.UTC(2030, 0, 1) });
  for (let i = 1; i <= count; i++) {
    await log.append({ actor: "admin@example", action: "revoke", subject: `serial-${i}`, details: { reason: "keyCompromise" } });
  }
  await log.close();
  return readFileSync(path, "utf8").split("\n").slice(0, -1);
}

t.test("lines chain by SHA-256 of the previous line's bytes; file is private", async (t) => {
  const path = fresh();
  const lines = await writeLog(path, 3);
  const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.same(Object.keys(events[0] ?? {}), ["seq", "at", "actor", "action", "subject", "details", "prev"]);
  t.equal(events[0]?.["prev"], AUDIT_GENESIS);
  t.equal(events[1]?.["prev"], auditLineHash(lines[0] ?? ""));
  t.equal(events[2]?.["seq"], 3);
  t.equal(events[0]?.["at"], "2030-01-01T00:00:00.000Z");
  t.equal(statSync(path).mode & 0o777, 0o600);
  t.same(await verifyCore(path), { ok: true, lines: 3, head: auditLineHash(lines[2] ?? ""), actions: { revoke: 3 } });
});

t.test("reopen continues the chain; concurrent appends keep call order", async (t) => {
  const path = fresh();
  await writeLog(path, 2);
  const log = await AuditLog.open(path);
  const events = await Promise.all(Array.from({ length: 50 }, (_, i) => log.append({ actor: "a", action: "issue", subject: String(i) })));
  t.same(events.map((e) => e.seq), Array.from({ length: 50 }, (_, i) => i + 3));
  t.equal(events.map((e) => e.subject).join(), Array.from({ length: 50 }, (_, i) => String(i)).join());
  const head = log.head();
  await log.close();
  const result = await verifyCore(path);
  t.same(result, { ok: true, lines: 52, head: head.hash, actions: { revoke: 2, issue: 50 } });
  t.equal(head.seq, 52);
});

t.test("a torn final line (crash mid-append) is cut off at reopen and the chain goes on", async (t) => {
  const path = fresh();
  await writeLog(path, 2);
  appendFileSync(path, '{"seq":3,"at":"2030-');
  t.same(await verifyCore(path), { ok: false, line: 3, reason: "malformed" });
  const log = await AuditLog.open(path);
  t.equal((await log.append({ actor: "a", action: "x", subject: "y" })).seq, 3);
  await log.close();
  t.match(await verifyAuditLog(path), { ok: true, lines: 3 });
  const lonely = fresh();
  writeFileSync(lonely, '{"seq":1,"at');
  const log2 = await AuditLog.open(lonely);
  t.equal((await log2.append({ actor: "a", action: "x", subject: "y" })).prev, AUDIT_GENESIS);
  await log2.close();
});

t.test("a changed line is reported (its successor's prev no longer matches)", async (t) => {
  const path = fresh();
  const lines = await writeLog(path, 5);
  lines[1] = (lines[1] ?? "").replace("keyCompromise", "superseded");
  writeFileSync(path, lines.join("\n") + "\n");
  t.same(await verifyCore(path), { ok: false, line: 2, reason: "changed" });
  const first = await writeLog(fresh(), 2);
  first[0] = (first[0] ?? "").replace(AUDIT_GENESIS, "1".repeat(64));
  const p2 = fresh();
  writeFileSync(p2, first.join("\n") + "\n");
  t.same(await verifyCore(p2), { ok: false, line: 1, reason: "changed" });
});

t.test("a deleted line is reported where the sequence has its gap", async (t) => {
  const path = fresh();
  const lines = await writeLog(path, 5);
  writeFileSync(path, [...lines.slice(0, 2), ...lines.slice(3)].join("\n") + "\n");
  t.same(await verifyCore(path), { ok: false, line: 3, reason: "deleted" });
  writeFileSync(path, lines.slice(1).join("\n") + "\n");
  t.same(await verifyCore(path), { ok: false, line: 1, reason: "deleted" });
});

t.test("reordered lines are reported", async (t) => {
  const path = fresh();
  const lines = await writeLog(path, 5);
  const [a, b, c, d, e] = lines as [string, string, string, string, string];
  writeFileSync(path, [a, c, b, d, e].join("\n") + "\n");
  t.same(await verifyCore(path), { ok: false, line: 2, reason: "reordered" });
  writeFileSync(path, [a, b, c, d, e, c].join("\n") + "\n");
  t.same(await verifyCore(path), { ok: false, line: 6, reason: "reordered" }, "a replayed line");
});

t.test("malformed lines are reported; an unreadable last line refuses reopen", async (t) => {
  const path = fresh();
  const lines = await writeLog(path, 3);
  writeFileSync(path, [lines[0], "not json", lines[2]].join("\n") + "\n");
  t.same(await verifyCore(path), { ok: false, line: 2, reason: "malformed" });
  writeFileSync(path, [lines[0], JSON.stringify({ seq: 2 })].join("\n") + "\n");
  t.same(await verifyCore(path), { ok: false, line: 2, reason: "malformed" });
  writeFileSync(path, [lines[0], "garbage"].join("\n") + "\n");
  await t.rejects(AuditLog.open(path), { code: "internal" });
  await t.rejects(verifyAuditLog(join(dir, "missing.jsonl")), { code: "ENOENT" });
});

t.test("bad input is refused before the chain moves", async (t) => {
  const path = fresh();
  const log = await AuditLog.open(path);
  await t.rejects(log.append({ actor: "a", action: "x", subject: "y", details: { n: 1n } }), TypeError);
  await t.rejects(log.append({ actor: 1 as never, action: "x", subject: "y" }), TypeError);
  t.equal((await log.append({ actor: "a", action: "x", subject: "y" })).seq, 1);
  await log.close();
  t.match(await verifyAuditLog(path), { ok: true, lines: 1 });
});

t.test("several writers on one file (replicas sharing a data directory) keep one unbroken chain", async (t) => {
  const path = fresh();
  const writers = await Promise.all([AuditLog.open(path), AuditLog.open(path), AuditLog.open(path)]);
  const events = await Promise.all(
    Array.from({ length: 90 }, (_, i) => writers[i % 3]!.append({ actor: `replica-${i % 3}`, action: "issue", subject: String(i) })),
  );
  await Promise.all(writers.map((w) => w.close()));
  t.same(events.map((e) => e.seq).sort((a, b) => a - b), Array.from({ length: 90 }, (_, i) => i + 1), "every seq once");
  t.match(await verifyAuditLog(path), { ok: true, lines: 90 });
  const reopened = await AuditLog.open(path);
  t.equal(reopened.head().seq, 90);
  t.notOk(existsSync(`${path}.lock`), "no lock left behind");
});

t.test("opening a log writes nothing; the file appears with the first append", async (t) => {
  const path = fresh();
  const log = await AuditLog.open(path);
  t.notOk(existsSync(path));
  await log.append({ actor: "a", action: "x", subject: "y" });
  t.ok(existsSync(path));
});
