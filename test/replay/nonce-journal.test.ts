import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t, { type Test } from "tap";
import { silentLogger } from "../../src/log.js";
import { noopRecorder } from "../../src/metrics/recorder.js";
import { MemoryReplayGuard } from "../../src/replay/memory-guard.js";
import { NonceJournal } from "../../src/replay/nonce-journal.js";
import type { NonceClaim } from "../../src/replay/nonce.js";
import { LogPool, StorageHealth } from "../../src/storage/index.js";
import { FaultyFileSystem } from "../helpers/faulty-fs.js";

const HORIZON_MS = 400_000;

/** One process's journal over `dir`. */
async function journal(dir: string, now: () => number, fs = new FaultyFileSystem()) {
  const guard = new MemoryReplayGuard(now);
  const health = new StorageHealth({ dir, fs, metrics: noopRecorder, log: silentLogger, probeIntervalMs: 60_000 });
  const pool = new LogPool({ fs, reporter: health, log: silentLogger });
  const nonces = await NonceJournal.open({ path: join(dir, "nonces.jsonl"), fs, pool, guard, log: silentLogger, now, horizonMs: HORIZON_MS });
  return {
    nonces,
    guard,
    health,
    fs,
    async stop() {
      await pool.close();
      await health.close();
    },
  };
}

async function tempDir(t: Test) {
  const dir = await mkdtemp(join(tmpdir(), "postern-nonce-journal-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const claim = (nonce: string, expiresAtMs: number, digest = "sha-256=:d:"): NonceClaim => ({ backend: "http", client: "fp", nonce, digest, expiresAtMs });

t.test("a claim is journalled before it resolves, and a restart holds it again", async (t) => {
  const dir = await tempDir(t);
  let clock = 1_700_000_000_000;
  const first = await journal(dir, () => clock);
  const c = claim("nonce-aaaaaaaaaaaaaaaa", clock + 330_000);
  t.same(await first.nonces.claim(c, "m1"), { outcome: "claimed", messageId: "m1" });
  t.equal((await readFile(join(dir, "nonces.jsonl"), "utf8")).split("\n").filter(Boolean).length, 1, "on disk when claim resolved");
  t.notMatch(await readFile(join(dir, "nonces.jsonl"), "utf8"), c.nonce, "the raw nonce is never stored");
  await first.stop();

  clock += 30_000;
  const second = await journal(dir, () => clock);
  t.teardown(() => second.stop());
  t.same(await second.nonces.claim(c, "m2"), { outcome: "duplicate", messageId: "m1" });
  t.same(await second.nonces.claim({ ...c, digest: "other" }, "m3"), { outcome: "replayed" });
});

t.test("a released claim stays released after a restart; expired claims are dropped by the compaction", async (t) => {
  const dir = await tempDir(t);
  let clock = 1_700_000_000_000;
  const first = await journal(dir, () => clock);
  const released = claim("nonce-released-000000", clock + 330_000);
  const expiring = claim("nonce-expiring-000000", clock + 5_000);
  const live = claim("nonce-live-0000000000", clock + 330_000);
  await first.nonces.claim(released, "m1");
  await first.nonces.release(released, "m1");
  await first.nonces.claim(expiring, "m2");
  await first.nonces.claim(live, "m3");
  await first.stop();
  t.equal((await readFile(join(dir, "nonces.jsonl"), "utf8")).split("\n").filter(Boolean).length, 4);

  clock += 10_000;
  const second = await journal(dir, () => clock);
  t.teardown(() => second.stop());
  t.equal(second.guard.size, 1);
  const kept = (await readFile(join(dir, "nonces.jsonl"), "utf8")).split("\n").filter(Boolean).map((l) => JSON.parse(l));
  t.same(kept.map((l) => l.claim.messageId), ["m3"], "compacted to the live claims");
  t.same(await readdir(dir), ["nonces.jsonl"], "no temp file left");
  t.equal((await second.nonces.claim(released, "m4")).outcome, "claimed");
  t.equal((await second.nonces.claim(expiring, "m5")).outcome, "claimed");
  t.equal((await second.nonces.claim(live, "m6")).outcome, "duplicate");
});

t.test("a claim that cannot be journalled fails with storage-unavailable and is not held", async (t) => {
  const dir = await tempDir(t);
  const fs = new FaultyFileSystem();
  const j = await journal(dir, Date.now, fs);
  t.teardown(() => j.stop());
  const c = claim("nonce-full-disk-00000", Date.now() + 330_000);
  fs.inject("sync", { code: "ENOSPC" });
  await t.rejects(j.nonces.claim(c, "m1"), { code: "storage-unavailable", status: 503 });
  t.equal(j.guard.size, 0);
  t.equal(j.health.up, false);
  t.same(await j.nonces.claim(c, "m2"), { outcome: "claimed", messageId: "m2" }, "the same request succeeds once the disk works");
  t.equal(j.health.up, true);
});

t.test("an unreadable journal stops the start (fail closed); a torn or foreign line is skipped", async (t) => {
  const dir = await tempDir(t);
  const clock = 1_700_000_000_000;
  const line = JSON.stringify({ atMs: clock, claim: { key: "{http}:nonce:fp:x", digest: "d", expiresAtMs: clock + 100_000, messageId: "m1" } });
  await writeFile(join(dir, "nonces.jsonl"), `not json\n${line}\n{"atMs":1,"claim":{"to`);
  const fs = new FaultyFileSystem();
  fs.inject("read", { code: "EIO" });
  await t.rejects(journal(dir, () => clock, fs), { code: "EIO" });
  const ok = await journal(dir, () => clock);
  t.teardown(() => ok.stop());
  t.equal(ok.guard.size, 1);
});
