import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, readFile, readdir, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t, { type Test } from "tap";
import type { AcceptedMessage } from "../../src/forward/backend.js";
import { FileStreamBackend } from "../../src/forward/file-stream.js";
import { StreamFiles } from "../../src/forward/stream-files.js";
import { compileStreamTemplate } from "../../src/forward/stream-template.js";
import { silentLogger } from "../../src/log.js";
import { noopRecorder } from "../../src/metrics/recorder.js";
import { MemoryReplayGuard } from "../../src/replay/memory-guard.js";
import type { NonceClaim } from "../../src/replay/nonce.js";
import { LogPool, nodeFileSystem, StorageHealth, type RetentionSettings } from "../../src/storage/index.js";

const { privateKey } = generateKeyPairSync("ed25519");
const HORIZON_MS = 400_000;
const T0 = 1_700_000_000_000;

/** One process's embedded stream backend "b" (stream `s`, or a template) with rotation. */
async function embedded(dataDir: string, retention: RetentionSettings, now: () => number, stream = "s") {
  const fs = nodeFileSystem;
  const guard = new MemoryReplayGuard(now);
  const health = new StorageHealth({ dir: dataDir, fs, metrics: noopRecorder, log: silentLogger, probeIntervalMs: 60_000 });
  const pool = new LogPool({ fs, reporter: health, log: silentLogger });
  const template = compileStreamTemplate(stream);
  const files = await new StreamFiles({ dataDir, fs, pool, guard, log: silentLogger, now, retention }).open("b", template.fixedName, HORIZON_MS);
  const backend = new FileStreamBackend({ name: "b", template, maxStreams: 16, files, guard, signer: { key: privateKey, keyid: "k" } });
  return {
    backend,
    guard,
    async stop() {
      await pool.close();
      await health.close();
    },
  };
}

let counter = 0;
function message(receivedAtMs: number, topic = "t") {
  counter += 1;
  const accepted: AcceptedMessage = {
    messageId: `message-${counter}`,
    route: "r",
    params: { topic },
    identity: { id: "c", roles: [], serial: "01", fingerprint: "fp", notAfterMs: 0 },
    clientCertDer: new Uint8Array([1, 2, 3]),
    method: "POST",
    authority: "localhost",
    path: `/v1/${topic}`,
    query: "",
    contentType: "application/json",
    contentDigest: "sha-256=:d:",
    body: Buffer.from(`{"n":${counter}}`),
    receivedAtMs,
  };
  const claim: NonceClaim = { backend: "b", client: "fp", nonce: `nonce-${counter}-0123456789`, digest: "sha-256=:d:", expiresAtMs: receivedAtMs + 330_000 };
  return { message: accepted, claim };
}

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "postern-rotation-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Every stored line of `dir`'s files for stream `s`, oldest file first. */
async function storedIds(dir: string, base = "b.jsonl"): Promise<{ files: string[]; messageIds: string[]; entryIds: string[] }> {
  const files = (await readdir(dir)).filter((n) => n === base || n.startsWith(base + ".")).sort((a, b) => (a === base ? 1 : b === base ? -1 : a.localeCompare(b)));
  const lines = (await Promise.all(files.map((f) => readFile(join(dir, f), "utf8")))).flatMap((text) => text.split("\n").filter(Boolean));
  const parsed = lines.map((l) => JSON.parse(l) as { id: string; fields: Record<string, string> });
  return { files, messageIds: parsed.map((p) => p.fields["message-id"]!), entryIds: parsed.map((p) => p.id) };
}

const every = { rotateBytes: 1, rotateAfterSeconds: 0 };

t.test("size rotation: one message per file, ids keep increasing, and a restart refuses every re-send", async (t) => {
  const dir = await tempDir(t);
  let clock = T0;
  const now = () => clock;
  const first = await embedded(dir, every, now);
  const sent = [message(clock), message(clock + 1), message(clock + 2)];
  const delivered = [];
  for (const m of sent) {
    clock = m.message.receivedAtMs;
    delivered.push(await first.backend.deliver(m.message, m.claim));
  }
  t.same(delivered.map((d) => d.kind), ["accepted", "accepted", "accepted"]);
  await first.stop();
  const stored = await storedIds(dir);
  t.same(stored.files, ["b.jsonl.000001", "b.jsonl.000002", "b.jsonl"], "renamed aside, numbered in order");
  t.same(stored.messageIds, sent.map((m) => m.message.messageId), "every acknowledged message once, in order");
  t.same([...stored.entryIds].sort(), stored.entryIds, "entry ids increase across files");

  clock += 60_000;
  const second = await embedded(dir, every, now);
  t.equal(second.guard.size, 3, "the claims of the rotated files are read back too");
  for (const [i, m] of sent.entries()) {
    const again = await second.backend.deliver({ ...m.message, messageId: "resent" }, m.claim);
    t.same(again, { kind: "duplicate", messageId: m.message.messageId, entryId: stored.entryIds[i] }, `re-send ${i + 1} after the restart`);
    t.same(await second.backend.deliver(m.message, { ...m.claim, digest: "sha-256=:other:" }), { kind: "replayed" });
  }
  const next = message(clock);
  const d = await second.backend.deliver(next.message, next.claim);
  await second.stop();
  const after = await storedIds(dir);
  t.same(after.files, ["b.jsonl.000001", "b.jsonl.000002", "b.jsonl.000003", "b.jsonl"], "numbering goes on after a restart");
  t.ok(d.kind === "accepted" && (d.entryId ?? "") > stored.entryIds.at(-1)!, "the next id is after the last stored one");
});

t.test("a start after a rotation whose new file was never written (crash) still reads the claims back", async (t) => {
  const dir = await tempDir(t);
  let clock = T0;
  const now = () => clock;
  const first = await embedded(dir, every, now);
  const m1 = message(clock);
  const m2 = message(++clock);
  await first.backend.deliver(m1.message, m1.claim);
  await first.backend.deliver(m2.message, m2.claim);
  await first.stop();
  await rename(join(dir, "b.jsonl"), join(dir, "b.jsonl.000002")); // as if rotated, then killed
  clock += 1000;
  const second = await embedded(dir, every, now);
  t.teardown(() => second.stop());
  t.equal((await second.backend.deliver(m2.message, m2.claim)).kind, "duplicate", "the newest rotated file's claim is held");
  t.equal((await second.backend.deliver(m1.message, m1.claim)).kind, "duplicate");
  const m3 = message(clock);
  const d = await second.backend.deliver(m3.message, m3.claim);
  t.equal(d.kind, "accepted");
});

t.test("retention removes the oldest rotated files beyond keepFiles, never one the replay window still reads", async (t) => {
  const dir = await tempDir(t);
  let clock = T0;
  const now = () => clock;
  const e = await embedded(dir, { ...every, keepFiles: 1, keepSeconds: 0 }, now);
  const sent = [];
  for (let i = 0; i < 4; i++) {
    const m = message(++clock);
    sent.push(m);
    await e.backend.deliver(m.message, m.claim);
  }
  await e.stop(); // waits for retention passes
  t.same((await storedIds(dir)).files, ["b.jsonl.000001", "b.jsonl.000002", "b.jsonl.000003", "b.jsonl"], "all within the replay window: kept");

  clock += HORIZON_MS + 10_000;
  const later = await embedded(dir, { ...every, keepFiles: 1, keepSeconds: 0 }, now);
  const m = message(clock);
  await later.backend.deliver(m.message, m.claim);
  await later.stop();
  const left = await storedIds(dir);
  t.same(left.files, ["b.jsonl.000004", "b.jsonl"], "the three oldest are gone, one rotated file is kept");
  t.same(left.messageIds, [sent[3]!.message.messageId, m.message.messageId]);
});

t.test("age rotation: a file whose first line is older than rotateAfterSeconds is rotated before the next write", async (t) => {
  const dir = await tempDir(t);
  let clock = T0;
  const now = () => clock;
  const first = await embedded(dir, { rotateBytes: 0, rotateAfterSeconds: 60 }, now);
  for (const step of [0, 30_000]) {
    clock = T0 + step;
    const m = message(clock);
    await first.backend.deliver(m.message, m.claim);
  }
  await first.stop();
  t.same((await storedIds(dir)).files, ["b.jsonl"], "30 s: not yet");
  clock = T0 + 61_000;
  const second = await embedded(dir, { rotateBytes: 0, rotateAfterSeconds: 60 }, now); // the age comes from the first line, across a restart
  const m = message(clock);
  await second.backend.deliver(m.message, m.claim);
  await second.stop();
  const stored = await storedIds(dir);
  t.same(stored.files, ["b.jsonl.000001", "b.jsonl"]);
  t.equal(stored.messageIds.length, 3);
});

t.test("a templated backend rotates each stream's file and a restart counts the streams and claims of rotated files", async (t) => {
  const dir = await tempDir(t);
  let clock = T0;
  const now = () => clock;
  const first = await embedded(dir, every, now, "{param.topic}");
  const a1 = message(++clock, "alpha");
  const a2 = message(++clock, "alpha");
  await first.backend.deliver(a1.message, a1.claim);
  await first.backend.deliver(a2.message, a2.claim);
  await first.stop();
  t.same((await readdir(join(dir, "b"))).sort(), ["alpha.jsonl", "alpha.jsonl.000001"]);
  await rm(join(dir, "b", "alpha.jsonl"));
  const second = await embedded(dir, every, now, "{param.topic}");
  t.teardown(() => second.stop());
  t.equal((await second.backend.deliver(a1.message, a1.claim)).kind, "duplicate", "a claim only in a rotated file is held");
});
