import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t, { type Test } from "tap";
import { silentLogger } from "../../src/log.js";
import { noopRecorder, type MetricsRecorder, type StorageFailure } from "../../src/metrics/recorder.js";
import { LogPool, PROBE_FILE, StorageHealth } from "../../src/storage/index.js";
import { FaultyFileSystem } from "../helpers/faulty-fs.js";

function recordingMetrics() {
  const failures: StorageFailure[] = [];
  const up: boolean[] = [];
  const metrics: MetricsRecorder = { ...noopRecorder, storageFailure: (f) => void failures.push(f), storageUp: (u) => void up.push(u) };
  return { metrics, failures, up };
}

/** Polls `condition` every 10 ms for up to 20 s (a probe timer may run late on a loaded machine). */
async function until(condition: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 20_000; !condition() && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
}

async function setup(t: Test, maxOpenFiles?: number, probeIntervalMs = 20) {
  const dir = await mkdtemp(join(tmpdir(), "postern-log-pool-"));
  const fs = new FaultyFileSystem();
  const recorded = recordingMetrics();
  const health = new StorageHealth({ dir, fs, metrics: recorded.metrics, log: silentLogger, probeIntervalMs });
  const pool = new LogPool({ fs, reporter: health, log: silentLogger, ...(maxOpenFiles ? { maxOpenFiles } : {}) });
  t.teardown(async () => {
    await pool.close();
    await health.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, fs, health, pool, ...recorded, file: (name: string) => join(dir, name) };
}

const rejection = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as { code?: string; status?: number; extensions?: Record<string, unknown> });

t.test("concurrent appends share one write and one fsync, in the order their lines were made", async (t) => {
  const s = await setup(t);
  await s.pool.append(s.file("a.jsonl"), () => "0\n");
  const syncs = s.fs.counts.sync;
  await Promise.all(Array.from({ length: 20 }, (_, i) => s.pool.append(s.file("a.jsonl"), () => `${i + 1}\n`)));
  t.ok(s.fs.counts.sync - syncs <= 2, `${s.fs.counts.sync - syncs} fsyncs for 20 records`);
  t.same((await readFile(s.file("a.jsonl"), "utf8")).trim().split("\n").map(Number), Array.from({ length: 21 }, (_, i) => i));
});

t.test("a failed batch fails every record in it with storage-unavailable; storage is down until a batch succeeds", async (t) => {
  const s = await setup(t, undefined, 60_000);
  const path = s.file("a.jsonl");
  await s.pool.append(path, () => "kept\n");
  // One record goes first; the next ten queue behind it and form the batch that fails.
  const first = s.pool.append(path, () => "first\n");
  s.fs.inject("write", { shortBytes: 7 });
  s.fs.inject("write", { code: "ENOSPC" });
  const batch = Array.from({ length: 10 }, (_, i) => rejection(s.pool.append(path, () => `lost ${i}\n`)));
  await first;
  const errors = await Promise.all(batch);
  for (const error of errors) {
    t.equal(error?.code, "storage-unavailable");
    t.equal(error?.status, 503);
    t.equal(error?.extensions?.retryAfterSeconds, 5);
  }
  t.equal(await readFile(path, "utf8"), "kept\nfirst\n", "nothing of the failed batch, no torn line");
  t.equal(s.health.up, false);
  t.same(s.failures, ["no_space"]);
  await s.pool.append(path, () => "after\n");
  t.equal(s.health.up, true, "the next batch that succeeds clears it");
  t.same(s.up, [true, false, true]);
  t.equal(await readFile(path, "utf8"), "kept\nfirst\nafter\n");
});

t.test("with no traffic, a probe brings storage back once writes work again", async (t) => {
  const s = await setup(t, undefined, 20);
  s.fs.failAlways("write", "ENOSPC");
  await rejection(s.pool.append(s.file("a.jsonl"), () => "x\n"));
  t.equal(s.health.up, false);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(s.health.up, false, "probes fail while the disk is full");
  t.ok(s.fs.counts.write > 2, "and they do try");
  s.fs.heal();
  await until(() => s.health.up);
  t.equal(s.health.up, true);
  t.notOk((await readdir(s.dir)).includes(PROBE_FILE), "the probe file is removed");
  t.same(s.failures, ["no_space"], "probes are not counted as failed batches");
});

t.test("the probe must fit the batch that failed, not just a page", async (t) => {
  const s = await setup(t, undefined, 10);
  // A disk with about 20 KB left: small writes fit, the 30 KB batch does not.
  s.fs.failAlways("write", "ENOSPC", { largerThan: 20_000 });
  await rejection(s.pool.append(s.file("a.jsonl"), () => "x".repeat(30_000) + "\n"));
  await new Promise((r) => setTimeout(r, 100));
  t.equal(s.health.up, false, "a 16 KB probe would pass; a 30 KB one does not");
  s.fs.heal();
  await until(() => s.health.up);
  t.equal(s.health.up, true);
});

t.test("a file created for a batch that failed is removed again", async (t) => {
  const s = await setup(t, undefined, 60_000);
  s.fs.inject("write", { code: "ENOSPC" });
  await rejection(s.pool.append(s.file("new.jsonl"), () => "x\n"));
  await new Promise((r) => setTimeout(r, 20));
  t.same(await readdir(s.dir), []);
  await s.pool.append(s.file("new.jsonl"), () => "y\n");
  t.equal(await readFile(s.file("new.jsonl"), "utf8"), "y\n");
});

t.test("open files stay bounded: idle ones are closed least recently used first, and reopen where they ended", async (t) => {
  const s = await setup(t, 3);
  for (let round = 0; round < 3; round++) {
    for (let f = 0; f < 10; f++) {
      await s.pool.append(s.file(`f${f}.jsonl`), () => `${round}\n`);
      t.ok(s.pool.openFiles <= 3, `${s.pool.openFiles} open`);
    }
  }
  for (let f = 0; f < 10; f++) t.equal(await readFile(s.file(`f${f}.jsonl`), "utf8"), "0\n1\n2\n");
});

t.test("a file whose tail could not be cut is never closed by eviction, and is repaired first", async (t) => {
  const s = await setup(t, 1);
  const dirty = s.file("dirty.jsonl");
  await s.pool.append(dirty, () => "a\n");
  s.fs.inject("write", { shortBytes: 2 }, { path: /dirty/ });
  s.fs.inject("write", { code: "EIO" }, { path: /dirty/ });
  s.fs.inject("truncate", { code: "EIO" }, { path: /dirty/ });
  await rejection(s.pool.append(dirty, () => "bbbb\n"));
  for (let f = 0; f < 3; f++) await s.pool.append(s.file(`o${f}.jsonl`), () => "o\n");
  t.equal(s.pool.openFiles, 2, "the dirty file stays open beside the newest idle one");
  await s.pool.append(dirty, () => "c\n");
  t.equal(await readFile(dirty, "utf8"), "a\nc\n");
});

t.test("after close, appends fail with storage-unavailable", async (t) => {
  const s = await setup(t);
  await s.pool.close();
  t.equal((await rejection(s.pool.append(s.file("a.jsonl"), () => "x\n")))?.code, "storage-unavailable");
});
