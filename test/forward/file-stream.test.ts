import { generateKeyPairSync } from "node:crypto";
import { appendFile, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t, { type Test } from "tap";
import type { AcceptedMessage } from "../../src/forward/backend.js";
import { FileStreamBackend } from "../../src/forward/file-stream.js";
import { storedEntryLine } from "../../src/forward/stored-entry.js";
import { StreamFiles } from "../../src/forward/stream-files.js";
import { compileStreamTemplate } from "../../src/forward/stream-template.js";
import { silentLogger } from "../../src/log.js";
import { noopRecorder } from "../../src/metrics/recorder.js";
import { MemoryReplayGuard } from "../../src/replay/memory-guard.js";
import { nonceKey, type NonceClaim } from "../../src/replay/nonce.js";
import { LogPool, StorageHealth, type StorageFileSystem } from "../../src/storage/index.js";
import { FaultyFileSystem } from "../helpers/faulty-fs.js";

const { privateKey } = generateKeyPairSync("ed25519");
const signer = { key: privateKey, keyid: "k" };
const HORIZON_MS = 400_000;

/** One process's embedded stream backend "b" over `dataDir`; `stop` is its shutdown. */
async function embedded(
  dataDir: string,
  options: { fs?: StorageFileSystem; now?: () => number; stream?: string; maxStreams?: number; maxOpenFiles?: number } = {},
) {
  const now = options.now ?? Date.now;
  const fs = options.fs ?? new FaultyFileSystem();
  const guard = new MemoryReplayGuard(now);
  const health = new StorageHealth({ dir: dataDir, fs, metrics: noopRecorder, log: silentLogger, probeIntervalMs: 60_000 });
  const pool = new LogPool({ fs, reporter: health, log: silentLogger, ...(options.maxOpenFiles ? { maxOpenFiles: options.maxOpenFiles } : {}) });
  const template = compileStreamTemplate(options.stream ?? "s");
  const files = await new StreamFiles({ dataDir, fs, pool, guard, log: silentLogger, now }).open("b", template.fixedName, HORIZON_MS);
  const backend = new FileStreamBackend({ name: "b", template, maxStreams: options.maxStreams ?? 256, files, guard, signer });
  return {
    backend,
    guard,
    health,
    pool,
    files,
    async stop() {
      await backend.close();
      await pool.close();
      await health.close();
    },
  };
}

let counter = 0;
/** A message and its claim; `nonce` and `digest` make re-sends and replays. */
function message(options: { topic?: string; nonce?: string; digest?: string; receivedAtMs?: number; expiresAtMs?: number } = {}) {
  counter += 1;
  const receivedAtMs = options.receivedAtMs ?? Date.now();
  const accepted: AcceptedMessage = {
    messageId: `message-${counter}`,
    route: "r",
    params: { topic: options.topic ?? "t" },
    identity: { id: "c", roles: [], serial: "01", fingerprint: "fp", notAfterMs: 0 },
    clientCertDer: new Uint8Array([1, 2, 3]),
    method: "POST",
    authority: "localhost",
    path: `/v1/${options.topic ?? "t"}`,
    query: "",
    contentType: "application/json",
    contentDigest: options.digest ?? "sha-256=:d:",
    body: Buffer.from(`{"n":${counter}}`),
    receivedAtMs,
  };
  const claim: NonceClaim = {
    backend: "b",
    client: "fp",
    nonce: options.nonce ?? `nonce-${counter}-0123456789`,
    digest: options.digest ?? "sha-256=:d:",
    expiresAtMs: options.expiresAtMs ?? receivedAtMs + 330_000,
  };
  return { message: accepted, claim };
}

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "postern-file-stream-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

type Line = { id: string; fields: Record<string, string>; claim: { key: string; messageId: string } };
const readLines = async (path: string): Promise<Line[]> => {
  const text = await readFile(path, "utf8");
  if (text !== "" && !text.endsWith("\n")) throw new Error(`torn last line in ${path}`);
  return text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Line);
};
const rejection = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as { code?: string; status?: number });

t.test("a batch that cannot be stored whole fails every message in it, gives their nonces back, and leaves no torn line", async (t) => {
  const dir = await tempDir(t);
  const fs = new FaultyFileSystem();
  const e = await embedded(dir, { fs });
  t.teardown(() => e.stop());
  const kept = message();
  t.equal((await e.backend.deliver(kept.message, kept.claim)).kind, "accepted");

  fs.inject("write", { shortBytes: 100 });
  fs.failAlways("write", "ENOSPC");
  const batch = Array.from({ length: 10 }, () => message());
  const errors = await Promise.all(batch.map((m) => rejection(e.backend.deliver(m.message, m.claim))));
  t.same(errors.map((x) => [x?.code, x?.status]), Array(10).fill(["storage-unavailable", 503]));
  t.equal(e.health.up, false);
  t.same((await readLines(join(dir, "b.jsonl"))).map((l) => l.fields["message-id"]), [kept.message.messageId], "only the acknowledged message");

  fs.heal();
  // The same signed requests again (same nonces, new message ids): their nonces were given back.
  const retried = await Promise.all(batch.map((m) => e.backend.deliver({ ...m.message, messageId: `${m.message.messageId}-retry` }, m.claim)));
  t.same(retried.map((d) => d.kind), Array(10).fill("accepted"));
  t.equal(e.health.up, true);
  const ids = (await readLines(join(dir, "b.jsonl"))).map((l) => l.fields["message-id"]);
  t.equal(ids.length, 11);
  t.equal(new Set(ids).size, 11, "each message once");
});

t.test("the claim is stored in the message's line, outside the signed fields", async (t) => {
  const dir = await tempDir(t);
  const e = await embedded(dir);
  t.teardown(() => e.stop());
  const m = message();
  const delivery = await e.backend.deliver(m.message, m.claim);
  const [line] = await readLines(join(dir, "b.jsonl"));
  t.same(line!.claim, { key: nonceKey("", m.claim), digest: m.claim.digest, expiresAtMs: m.claim.expiresAtMs, messageId: m.message.messageId });
  t.equal(delivery.kind === "accepted" && delivery.entryId, line!.id);
  t.notOk("claim" in line!.fields);
  t.notMatch(await readFile(join(dir, "b.jsonl"), "utf8"), m.claim.nonce, "the raw nonce is never stored");
});

t.test("a restart puts the live claims back: a re-send is a duplicate naming the original, other content a replay", async (t) => {
  const dir = await tempDir(t);
  let clock = 1_700_000_000_000;
  const now = () => clock;
  const first = await embedded(dir, { now });
  const live = message({ receivedAtMs: clock });
  const shortLived = message({ receivedAtMs: clock, expiresAtMs: clock + 10_000 });
  const original = await first.backend.deliver(live.message, live.claim);
  await first.backend.deliver(shortLived.message, shortLived.claim);
  await first.stop();

  clock += 60_000;
  const second = await embedded(dir, { now });
  t.teardown(() => second.stop());
  t.equal(second.guard.size, 1, "the live claim only");
  const again = await second.backend.deliver({ ...live.message, messageId: "new-id" }, live.claim);
  t.same(again, { kind: "duplicate", messageId: live.message.messageId, entryId: original.kind === "accepted" ? original.entryId : "" });
  t.same(await second.backend.deliver(live.message, { ...live.claim, digest: "sha-256=:other:" }), { kind: "replayed" });
  t.equal((await second.backend.deliver(shortLived.message, { ...shortLived.claim, expiresAtMs: clock + 300_000 })).kind, "accepted", "an expired claim is not held");
  t.equal((await readLines(join(dir, "b.jsonl"))).length, 3);
});

t.test("a start reads a large file only from its end", async (t) => {
  const dir = await tempDir(t);
  const clock = 1_700_000_000_000;
  const old = Array.from({ length: 20_000 }, (_, i) =>
    storedEntryLine(`${clock - 3_600_000 + i}-0`, { body: "x".repeat(200) }, { key: `{b}:nonce:fp:${i}`, digest: "d", expiresAtMs: clock - 1, messageId: `old-${i}` }),
  ).join("");
  await writeFile(join(dir, "b.jsonl"), old); // ~5 MB of entries past the horizon
  const recent = message({ receivedAtMs: clock });
  await appendFile(join(dir, "b.jsonl"), storedEntryLine(`${clock}-0`, { body: "e30=" }, { key: nonceKey("", recent.claim), digest: recent.claim.digest, expiresAtMs: recent.claim.expiresAtMs, messageId: "recent" }));
  const fs = new FaultyFileSystem();
  const e = await embedded(dir, { fs, now: () => clock + 1000 });
  t.teardown(() => e.stop());
  t.ok(fs.counts.read <= 4, `${fs.counts.read} reads of 64 KiB`);
  t.equal(e.guard.size, 1);
  t.same(await e.backend.deliver(recent.message, recent.claim), { kind: "duplicate", messageId: "recent", entryId: `${clock}-0` });
});

t.test("a torn last line is cut at start, and entry ids keep growing even when the clock went back", async (t) => {
  const dir = await tempDir(t);
  let clock = 1_700_000_000_000;
  const first = await embedded(dir, { now: () => clock });
  const a = message({ receivedAtMs: clock });
  const idA = await first.backend.deliver(a.message, a.claim);
  await first.stop();
  await appendFile(join(dir, "b.jsonl"), '{"id":"1700000000001-0","bodyEncoding":"base64","fie');
  clock -= 5_000;
  const second = await embedded(dir, { now: () => clock });
  t.teardown(() => second.stop());
  const b = message({ receivedAtMs: clock });
  const idB = await second.backend.deliver(b.message, b.claim);
  const lines = await readLines(join(dir, "b.jsonl"));
  t.equal(lines.length, 2, "the torn line is gone, the new one is whole");
  t.equal(idA.kind === "accepted" && idA.entryId, "1700000000000-0");
  t.equal(idB.kind === "accepted" && idB.entryId, "1700000000000-1");
});

t.test("maxStreams: a new name beyond the cap is 422 stream-limit; existing names keep working; nothing is created", async (t) => {
  const dir = await tempDir(t);
  const e = await embedded(dir, { stream: "s-{param.topic}", maxStreams: 2 });
  const send = (topic: string, extra: Parameters<typeof message>[0] = {}) => {
    const m = message({ topic, ...extra });
    return e.backend.deliver(m.message, m.claim);
  };
  t.equal((await send("a")).kind, "accepted");
  t.equal((await send("b")).kind, "accepted");
  t.equal((await send("a")).kind, "accepted");
  const refused = await rejection(send("c", { nonce: "nonce-refused-0123456789" }));
  t.same([refused?.code, refused?.status], ["stream-limit", 422]);
  t.equal((await send("a", { nonce: "nonce-refused-0123456789" })).kind, "accepted", "the refused message spent no nonce");
  t.same((await readdir(join(dir, "b"))).sort(), ["s-a.jsonl", "s-b.jsonl"]);
  await e.stop();

  // A start counts the names that hold messages; an empty leftover file counts for nothing.
  await writeFile(join(dir, "b", "s-empty.jsonl"), "");
  const again = await embedded(dir, { stream: "s-{param.topic}", maxStreams: 3 });
  t.teardown(() => again.stop());
  t.equal(again.files.streamCount, 2);
  const m = message({ topic: "c" });
  t.equal((await again.backend.deliver(m.message, m.claim)).kind, "accepted");
  const d = message({ topic: "d" });
  t.equal((await rejection(again.backend.deliver(d.message, d.claim)))?.code, "stream-limit");
});

t.test("concurrent first messages of new names cannot slip past the cap together", async (t) => {
  const dir = await tempDir(t);
  const e = await embedded(dir, { stream: "s-{param.topic}", maxStreams: 2 });
  t.teardown(() => e.stop());
  const first = message({ topic: "a" });
  await e.backend.deliver(first.message, first.claim);
  const racing = await Promise.all(
    ["x", "y", "z"].map((topic) => {
      const m = message({ topic });
      return e.backend.deliver(m.message, m.claim).then((d) => d.kind, (error: { code: string }) => error.code);
    }),
  );
  t.same(racing.sort(), ["accepted", "stream-limit", "stream-limit"]);
  t.equal((await readdir(join(dir, "b"))).length, 2);
});

t.test("a duplicate, a replay or a failed first write creates no file", async (t) => {
  const dir = await tempDir(t);
  const fs = new FaultyFileSystem();
  const e = await embedded(dir, { fs, stream: "s-{param.topic}" });
  t.teardown(() => e.stop());
  const m = message({ topic: "a" });
  await e.backend.deliver(m.message, m.claim);
  t.equal((await e.backend.deliver({ ...m.message, params: { topic: "dup" } }, m.claim)).kind, "duplicate");
  t.equal((await e.backend.deliver({ ...m.message, params: { topic: "rep" } }, { ...m.claim, digest: "other" })).kind, "replayed");
  fs.inject("write", { code: "ENOSPC" });
  const failed = message({ topic: "failed" });
  t.equal((await rejection(e.backend.deliver(failed.message, failed.claim)))?.code, "storage-unavailable");
  await new Promise((r) => setTimeout(r, 20));
  t.same(await readdir(join(dir, "b")), ["s-a.jsonl"]);
  t.equal((await e.backend.deliver(failed.message, failed.claim)).kind, "accepted", "and the name is free again");
});

t.test("many stream names, few open descriptors", async (t) => {
  const dir = await tempDir(t);
  const e = await embedded(dir, { stream: "s-{param.topic}", maxStreams: 1000, maxOpenFiles: 8 });
  t.teardown(() => e.stop());
  for (let i = 0; i < 100; i++) {
    const m = message({ topic: `n${i}` });
    await e.backend.deliver(m.message, m.claim);
    t.ok(e.pool.openFiles <= 8, `${e.pool.openFiles} open after ${i + 1} names`);
  }
  t.equal((await readdir(join(dir, "b"))).length, 100);
});
