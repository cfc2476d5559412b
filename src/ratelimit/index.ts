/** The public surface of src/ratelimit/: everything outside it imports from here. */
export { type BucketLimit, MemoryRateLimiter, type RateLimiter } from "./memory-limiter.js";
export { bucketKey, limitFor } from "./policy.js";
export { RedisRateLimiter } from "./redis-limiter.js";
