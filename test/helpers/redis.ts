/**
 * Test access to the real Redis at POSTERN_TEST_REDIS_URL (default redis://127.0.0.1:6379).
 * Fails loudly when Redis does not answer: a skipped Redis test would hide a broken adapter.
 * Each run uses its own key prefix and deletes only its own keys (never FLUSHDB).
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";

export const TEST_REDIS_URL = process.env["POSTERN_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";

/** Connects and PINGs; throws (failing the test) if Redis is not there within 3 s. */
export async function connectTestRedis(): Promise<Redis> {
  const redis = new Redis(TEST_REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 3000,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    throw new Error(`Redis at ${TEST_REDIS_URL} did not answer; start it or set POSTERN_TEST_REDIS_URL`, { cause: err });
  }
  return redis;
}

/** A fresh prefix with one hash tag, e.g. `postern-test:{a1b2c3d4e5f6}:`. */
export function uniqueTestPrefix(label = "pki"): string {
  return `postern-test:{${label}-${randomBytes(6).toString("hex")}}:`;
}

/** Deletes every key under `prefix` (SCAN + DEL), and nothing else. */
export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<number> {
  const pattern = prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`) + "*";
  let cursor = "0";
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    if (keys.length > 0) deleted += await redis.del(...keys);
    cursor = next;
  } while (cursor !== "0");
  return deleted;
}

/**
 * A connection to the test Redis and a key prefix of this test's own; at teardown every key
 * under the prefix is deleted and the connection closed.
 */
export async function useTestRedis(t: { teardown(fn: () => Promise<void>): void }): Promise<{ redis: Redis; keyPrefix: string }> {
  const redis = await connectTestRedis();
  const keyPrefix = `postern-test:${randomBytes(6).toString("hex")}:`;
  t.teardown(async () => {
    await deleteKeysWithPrefix(redis, keyPrefix);
    await redis.quit();
  });
  return { redis, keyPrefix };
}
