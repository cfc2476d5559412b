import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t, { type Test } from "tap";
import { silentLogger } from "../../src/log.js";
import { noopRecorder } from "../../src/metrics/recorder.js";
import { MemoryReplayGuard } from "../../src/replay/memory-guard.js";
import { NonceJournal } from "../../src/replay/nonce-journal.js";
import type { NonceClaim } from "../../src/replay/nonce.js";
import { LogPool, nodeFileSystem, StorageHealth } from "../../src/storage/index.js";

const HORIZON_MS = 400_000;
const T0 = 1_700_000_000_000;

/** One process's journal over `dir`, rotating before every write. */
async function journal(dir: string, now: () => number) {
  const fs = nodeFileSystem;
  const guard = new MemoryReplayGuard(now);
  const health = new StorageHealth({ dir, fs, metrics: noopRecorder, log: silentLogger, probeIntervalMs: 60_000 });
  const pool = new LogPool({ fs, reporter: health, log: silentLogger });
  const nonces = await NonceJournal.open({
    path: join(dir, "nonces.jsonl"),
    fs,
    pool,
    guard,
    log: silentLogger,
    now,
    horizonMs: HORIZON_MS,
    retention: { rotateBytes: 1, rotateAfterSeconds: 0 },
  });
  return {
    nonces,
    async stop() {
      await pool.close();
      await health.close();
    },
  };
}

async function tempDir(t: Test) {
  const dir = await mkdtemp(join(tmpdir(), "postern-nonce-rotation-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const claim = (nonce: string, expiresAtMs: number): NonceClaim => ({ backend: "http", client: "fp", nonce, digest: "sha-256=:d:", expiresAtMs });

t.test("a claim journalled just before a rotation is refused after a restart; the start folds rotated journals back into one", async (t) => {
  const dir = await tempDir(t);
  let clock = T0;
  const first = await journal(dir, () => clock);
  const claims = ["nonce-aaaaaaaaaaaaaaaa", "nonce-bbbbbbbbbbbbbbbb", "nonce-cccccccccccccccc"].map((n) => claim(n, clock + 330_000));
  for (const [i, c] of claims.entries()) t.equal((await first.nonces.claim(c, `m${i}`)).outcome, "claimed");
  await first.stop();
  t.same((await readdir(dir)).filter((n) => n.startsWith("nonces")).sort(), ["nonces.jsonl", "nonces.jsonl.000001", "nonces.jsonl.000002"]);

  clock += 30_000;
  const second = await journal(dir, () => clock);
  t.same((await readdir(dir)).filter((n) => n.startsWith("nonces")), ["nonces.jsonl"], "compacted into one file at start");
  for (const [i, c] of claims.entries()) t.same(await second.nonces.claim(c, "again"), { outcome: "duplicate", messageId: `m${i}` }, `claim ${i + 1}`);
  await second.stop();

  // And once more: the compacted file holds them all.
  clock += 30_000;
  const third = await journal(dir, () => clock);
  t.teardown(() => third.stop());
  t.equal((await third.nonces.claim(claims[0]!, "again")).outcome, "duplicate");
});

t.test("while running, rotated journals whose claims have all expired are removed", async (t) => {
  const dir = await tempDir(t);
  let clock = T0;
  const j = await journal(dir, () => clock);
  await j.nonces.claim(claim("nonce-dddddddddddddddd", clock + 330_000), "m1");
  clock = T0 + 200_000;
  await j.nonces.claim(claim("nonce-eeeeeeeeeeeeeeee", clock + 330_000), "m2");
  clock = T0 + HORIZON_MS + 1000;
  await j.nonces.claim(claim("nonce-ffffffffffffffff", clock + 330_000), "m3");
  await j.stop();
  t.same((await readdir(dir)).filter((n) => n.startsWith("nonces")).sort(), ["nonces.jsonl", "nonces.jsonl.000002"], "the first journal is past the horizon; the second is still within it");
});
