/** The public surface of src/redis/: everything outside it imports from here. */
export { type RedisClient, connectRedis, describeRedis, isRedisReplyError, subscriberOf } from "./client.js";
export { RedisHealth } from "./health.js";
export { reachRedis } from "./reach.js";
