import { mkdtemp, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t, { type Test } from "tap";
import { AUDIT_GENESIS, AuditLog, auditLineHash, verifyAuditLog } from "../../../src/pki/audit/audit.js";

const T0 = Date.UTC(2030, 0, 1);

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "postern-audit-rotation-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Appends `count` events one by one (each its own batch, so each may rotate). */
async function append(path: string, count: number, opts: { now?: () => number; rotateBytes?: number; rotateAfterSeconds?: number; keepFiles?: number } = {}) {
  const log = await AuditLog.open(path, {
    now: opts.now ?? (() => T0),
    retention: { rotateBytes: opts.rotateBytes ?? 1, rotateAfterSeconds: opts.rotateAfterSeconds ?? 0, keepFiles: opts.keepFiles ?? 0, keepSeconds: 0 },
  });
  for (let i = 0; i < count; i++) await log.append({ actor: "admin", action: "token.create", subject: `client-${i}` });
  await log.close();
  return log.head();
}

const filesOf = async (dir: string) => (await readdir(dir)).filter((n) => n.startsWith("audit.jsonl") && !n.endsWith(".lock")).sort();
const linesOf = async (path: string) => (await readFile(path, "utf8")).split("\n").filter(Boolean);

t.test("each rotated file's successor begins with audit.rotate chained to its last line; verify reads them all", async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, "audit.jsonl");
  const head = await append(path, 4);
  t.same(await filesOf(dir), ["audit.jsonl", "audit.jsonl.000001", "audit.jsonl.000002", "audit.jsonl.000003"]);
  const first = await linesOf(join(dir, "audit.jsonl.000001"));
  t.equal(JSON.parse(first[0]!).prev, AUDIT_GENESIS, "the oldest file starts the chain");
  const second = await linesOf(join(dir, "audit.jsonl.000002"));
  const rotate = JSON.parse(second[0]!) as { seq: number; action: string; subject: string; prev: string };
  t.match(rotate, { seq: 2, action: "audit.rotate", subject: "audit.jsonl.000001", prev: auditLineHash(first.at(-1)!) });
  t.equal(JSON.parse(second[1]!).seq, 3, "the event the batch asked for follows it");

  const result = await verifyAuditLog(path);
  t.match(result, { ok: true, lines: 7, head: head.hash, actions: { "token.create": 4, "audit.rotate": 3 }, start: { seq: 1, genesis: true } });
  t.equal(result.ok && result.files.length, 4);
});

t.test("a tampered middle file, a missing middle file and a missing newest rotated file are named", async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, "audit.jsonl");
  await append(path, 5);
  const middle = join(dir, "audit.jsonl.000002");
  const original = await readFile(middle, "utf8");

  await writeFile(middle, original.replace("client-1", "client-9"));
  t.match(await verifyAuditLog(path), { ok: false, file: middle, line: 2, reason: "changed" }, "an edited line");
  await writeFile(middle, original);
  t.match(await verifyAuditLog(path), { ok: true });

  await rename(middle, join(dir, "aside"));
  t.match(await verifyAuditLog(path), { ok: false, reason: "missing-file", missing: "audit.jsonl.000002" }, "a gap in the numbering");
  await rename(join(dir, "aside"), middle);

  const newest = join(dir, "audit.jsonl.000004");
  await rename(newest, join(dir, "aside"));
  t.match(await verifyAuditLog(path), { ok: false, file: path, line: 1, reason: "missing-file", missing: "audit.jsonl.000004" }, "the file the active one names");
});

t.test("retention removes the oldest files; the rest verifies and says where the retained chain starts", async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, "audit.jsonl");
  const head = await append(path, 6, { keepFiles: 2 });
  t.same(await filesOf(dir), ["audit.jsonl", "audit.jsonl.000004", "audit.jsonl.000005"]);
  const result = await verifyAuditLog(path);
  t.match(result, { ok: true, head: head.hash, start: { genesis: false, file: join(dir, "audit.jsonl.000004"), after: "audit.jsonl.000003" } });
  const rotateLines = (await linesOf(path)).map((l) => JSON.parse(l) as { action: string; details: { removed?: string[] } });
  t.same(rotateLines[0]!.details.removed, ["audit.jsonl.000003"], "the rotation event records what retention removed");

  // Cutting the first line of the oldest retained file is not retention: refused.
  const oldest = join(dir, "audit.jsonl.000004");
  const lines = await linesOf(oldest);
  await writeFile(oldest, lines.slice(1).map((l) => l + "\n").join(""));
  t.match(await verifyAuditLog(path), { ok: false, file: oldest, line: 1 });
});

t.test("age rotation, and a crash between the rename and the next append", async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, "audit.jsonl");
  let clock = T0;
  await append(path, 2, { now: () => clock, rotateBytes: 0, rotateAfterSeconds: 3600 });
  clock += 3599_000;
  await append(path, 1, { now: () => clock, rotateBytes: 0, rotateAfterSeconds: 3600 });
  t.same(await filesOf(dir), ["audit.jsonl"], "not an hour yet");
  clock += 2000;
  await append(path, 1, { now: () => clock, rotateBytes: 0, rotateAfterSeconds: 3600 });
  t.same(await filesOf(dir), ["audit.jsonl", "audit.jsonl.000001"]);

  await rename(path, join(dir, "audit.jsonl.000002")); // rotated, then the process died
  await append(path, 1, { now: () => clock, rotateBytes: 0, rotateAfterSeconds: 3600 });
  const [first] = await linesOf(path);
  t.match(JSON.parse(first!), { action: "audit.rotate", subject: "audit.jsonl.000002" }, "the interrupted rotation is completed");
  t.match(await verifyAuditLog(path), { ok: true, lines: 7, start: { genesis: true } });
});
