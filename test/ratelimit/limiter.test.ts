import t, { type Test } from "tap";
import { useTestRedis } from "../helpers/redis.js";
import { RedisRateLimiter } from "../../src/ratelimit/redis-limiter.js";
import { MemoryRateLimiter, type RateLimiter } from "../../src/ratelimit/memory-limiter.js";


async function contract(t: Test, name: string, make: () => { limiter: RateLimiter; advance: (ms: number) => Promise<void> }) {
  t.test(`${name}: a bucket gives its burst, then refuses with a retry time, then refills`, async (t) => {
    const { limiter, advance } = make();
    const limit = { ratePerSecond: 2, burst: 5 };
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await limiter.take("k1", limit));
    t.same(results.map((r) => r.allowed), [true, true, true, true, true, false]);
    t.ok(results[5]!.retryAfterMs > 0 && results[5]!.retryAfterMs <= 500, `retry after ${results[5]!.retryAfterMs} ms`);
    // 600 ms at 2/s refills 1.2 tokens; anything from 500 to 999 ms (a slow timer) gives exactly one.
    await advance(600);
    const after = [];
    for (let i = 0; i < 2; i++) after.push((await limiter.take("k1", limit)).allowed);
    t.same(after, [true, false], "refilled one token");
    t.ok((await limiter.take("k2", limit)).allowed, "buckets are per key");
  });
}

t.test("memory limiter", async (t) => {
  let now = 1_000_000;
  await contract(t, "memory", () => ({
    limiter: new MemoryRateLimiter(() => now),
    advance: async (ms) => {
      now += ms;
    },
  }));
});

t.test("redis limiter (Redis's own clock)", async (t) => {
  const { redis, keyPrefix: prefix } = await useTestRedis(t);
  t.teardown(async () => {
  });
  await contract(t, "redis", () => ({
    limiter: new RedisRateLimiter(redis, prefix),
    advance: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  }));
  t.test("100 concurrent takes from a burst of 20: exactly 20 pass", async (t) => {
    const limiter = new RedisRateLimiter(redis, prefix);
    const results = await Promise.all(Array.from({ length: 100 }, () => limiter.take("race", { ratePerSecond: 0.001, burst: 20 })));
    t.equal(results.filter((r) => r.allowed).length, 20);
  });
});
