import { PosternError } from "../errors.js";
import type { RedisClient } from "../redis/index.js";
import type { BucketLimit, RateLimiter, TakeResult } from "./memory-limiter.js";

/**
 * One token bucket per key in a Redis hash, refilled and taken in one script on Redis's own
 * clock, so every replica draws from the same bucket at the same rate.
 * KEYS[1] bucket; ARGV rate per second, burst, mode ("take" or "peek": peek writes nothing).
 * Returns {allowed, retryAfterMs, tokens available before this call}.
 */
const BUCKET_SCRIPT = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local available = tostring(tokens)
if ARGV[3] == 'peek' then return {0, 0, available} end
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, wait, available}
`;

type BucketCommand = (key: string, rate: number, burst: number, mode: "take" | "peek") => Promise<[number, number, string]>;

export class RedisRateLimiter implements RateLimiter {
  constructor(
    private readonly redis: RedisClient,
    private readonly keyPrefix: string,
  ) {
    redis.defineCommand("posternBucket", { numberOfKeys: 1, lua: BUCKET_SCRIPT });
  }

  async peek(key: string, limit: BucketLimit): Promise<number> {
    const [, , available] = await this.run(key, limit, "peek");
    return Number(available);
  }

  async take(key: string, limit: BucketLimit): Promise<TakeResult> {
    const [allowed, retryAfterMs] = await this.run(key, limit, "take");
    return { allowed: allowed === 1, retryAfterMs };
  }

  /** Fails closed: a Redis error refuses the request (503), it never waves it through. */
  private async run(key: string, limit: BucketLimit, mode: "take" | "peek"): Promise<[number, number, string]> {
    const bucket = (this.redis as unknown as { posternBucket: BucketCommand }).posternBucket.bind(this.redis);
    try {
      return await bucket(`${this.keyPrefix}${key}`, limit.ratePerSecond, limit.burst, mode);
    } catch (cause) {
      throw new PosternError("replay-store-unavailable", "the shared state store did not answer; nothing was forwarded", {
        cause,
        extensions: { retryAfterSeconds: 1 },
      });
    }
  }
}
