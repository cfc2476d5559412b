import { PosternError } from "../errors.js";
import type { RedisClient } from "../replay/redis-guard.js";
import type { BucketLimit, RateLimiter, TakeResult } from "./token-bucket.js";

/**
 * One token bucket per key in a Redis hash, refilled and taken in one script on Redis's own
 * clock, so every replica draws from the same bucket at the same rate.
 * KEYS[1] bucket; ARGV rate per second, burst. Returns {allowed, retryAfterMs}.
 */
const TAKE_SCRIPT = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
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
return {allowed, wait}
`;

const PEEK_SCRIPT = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
return tostring(math.min(burst, tokens + math.max(0, now - at) * rate / 1000))
`;

type PeekCommand = (key: string, rate: number, burst: number) => Promise<string>;
type TakeCommand = (key: string, rate: number, burst: number) => Promise<[number, number]>;

export class RedisRateLimiter implements RateLimiter {
  constructor(
    private readonly redis: RedisClient,
    private readonly keyPrefix: string,
  ) {
    redis.defineCommand("posternTake", { numberOfKeys: 1, lua: TAKE_SCRIPT });
    redis.defineCommand("posternPeek", { numberOfKeys: 1, lua: PEEK_SCRIPT });
  }

  async peek(key: string, limit: BucketLimit): Promise<number> {
    const peek = (this.redis as unknown as { posternPeek: PeekCommand }).posternPeek.bind(this.redis);
    return Number(await peek(`${this.keyPrefix}${key}`, limit.ratePerSecond, limit.burst));
  }

  async take(key: string, limit: BucketLimit): Promise<TakeResult> {
    const take = (this.redis as unknown as { posternTake: TakeCommand }).posternTake.bind(this.redis);
    try {
      const [allowed, retryAfterMs] = await take(`${this.keyPrefix}${key}`, limit.ratePerSecond, limit.burst);
      return { allowed: allowed === 1, retryAfterMs };
    } catch (cause) {
      throw new PosternError("replay-store-unavailable", "the shared state store did not answer; nothing was forwarded", {
        cause,
        extensions: { retryAfterSeconds: 1 },
      });
    }
  }
}
