import { Redis } from "ioredis";
import t, { type Test } from "tap";
import { MemoryReplayGuard } from "../../src/replay/memory-guard.js";
import type { NonceGuard } from "../../src/replay/guard.js";
import type { NonceClaim } from "../../src/replay/nonce.js";
import { RedisReplayGuard } from "../../src/replay/redis-guard.js";
import { useTestRedis } from "../helpers/redis.js";

/** The replay guard contract: the embedded and the Redis guard must behave the same. */
async function contract(t: Test, make: () => { guard: NonceGuard; wait: (ms: number) => Promise<void>; now: () => number }) {
  const claim = (over: Partial<NonceClaim> = {}, now = Date.now()): NonceClaim => ({
    backend: "b",
    client: "client-1",
    nonce: "nonce-0123456789abcdef",
    digest: "sha-256=:aaaa:",
    expiresAtMs: now + 60_000,
    ...over,
  });

  t.test("the first claim wins; a re-send is a duplicate naming the original; other content is a replay", async (t) => {
    const { guard, now } = make();
    const c = claim({ nonce: "n-first-0123456789" }, now());
    t.same(await guard.claim(c, "m1"), { outcome: "claimed", messageId: "m1" });
    t.match(await guard.claim(c, "m2"), { outcome: "duplicate", messageId: "m1" });
    t.same(await guard.claim({ ...c, digest: "sha-256=:bbbb:" }, "m3"), { outcome: "replayed" });
  });

  t.test("nonces are per client and per backend", async (t) => {
    const { guard, now } = make();
    const c = claim({ nonce: "n-scope-0123456789" }, now());
    t.equal((await guard.claim(c, "m1")).outcome, "claimed");
    t.equal((await guard.claim({ ...c, client: "client-2" }, "m2")).outcome, "claimed");
    t.equal((await guard.claim({ ...c, backend: "other" }, "m3")).outcome, "claimed");
  });

  t.test("a claim ends when the signature would be stale anyway", async (t) => {
    const { guard, wait, now } = make();
    const c = claim({ nonce: "n-expiry-0123456789", expiresAtMs: now() + 300 }, now());
    t.equal((await guard.claim(c, "m1")).outcome, "claimed");
    await wait(450);
    t.equal((await guard.claim({ ...c, expiresAtMs: now() + 60_000 }, "m2")).outcome, "claimed");
  });

  t.test("release gives a claim back only to the message that made it", async (t) => {
    const { guard, now } = make();
    const c = claim({ nonce: "n-release-0123456789" }, now());
    await guard.claim(c, "m1");
    await guard.release(c, "someone-else");
    t.equal((await guard.claim(c, "m2")).outcome, "duplicate", "still held");
    await guard.release(c, "m1");
    t.same(await guard.claim(c, "m3"), { outcome: "claimed", messageId: "m3" });
  });

  t.test("50 concurrent claims of one nonce: exactly one is claimed", async (t) => {
    const { guard, now } = make();
    const c = claim({ nonce: "n-race-0123456789ab" }, now());
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => guard.claim(c, `m${i}`)));
    t.equal(results.filter((r) => r.outcome === "claimed").length, 1);
    t.equal(results.filter((r) => r.outcome === "duplicate").length, 49);
  });
}

t.test("memory guard", async (t) => {
  let clock = 1_700_000_000_000;
  await contract(t, () => ({
    guard: new MemoryReplayGuard(() => clock),
    now: () => clock,
    wait: async (ms) => {
      clock += ms;
    },
  }));
});

t.test("redis guard", async (t) => {
  const { redis, keyPrefix } = await useTestRedis(t);
  await contract(t, () => ({
    guard: new RedisReplayGuard({ redis, keyPrefix }),
    now: Date.now,
    wait: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  }));

  t.test("fails closed when Redis does not answer", async (t) => {
    const away = new Redis("redis://127.0.0.1:1", { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    away.on("error", () => undefined);
    t.teardown(() => away.disconnect());
    const guard = new RedisReplayGuard({ redis: away, keyPrefix });
    await t.rejects(
      guard.claim({ backend: "b", client: "c", nonce: "n-away-0123456789", digest: "d", expiresAtMs: Date.now() + 1000 }, "m"),
      { code: "replay-store-unavailable", status: 503 },
    );
  });
});
