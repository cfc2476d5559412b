/**
 * Lua scripts of the Redis PKI store. Each runs atomically on one node; every key it touches
 * shares the store's hash tag, so they also work on Redis Cluster. Scripts are sent by SHA
 * first and by body only when the server does not know them yet.
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

/** A script with its SHA-1, run with EVALSHA and a NOSCRIPT fallback. */
export interface LuaScript {
  body: string;
  sha: string;
}

function script(body: string): LuaScript {
  return { body, sha: createHash("sha1").update(body).digest("hex") };
}

/** Runs `s` with `keys` and `args`, loading it on first use (or after a SCRIPT FLUSH). */
export async function runScript(redis: Redis, s: LuaScript, keys: string[], args: (string | number)[]): Promise<unknown> {
  try {
    return await redis.evalsha(s.sha, keys.length, ...keys, ...args);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
    return redis.eval(s.body, keys.length, ...keys, ...args);
  }
}

/**
 * KEYS: cert, all-index, identity-index, revoked-hash, revoked-index.
 * ARGV: record JSON, fingerprint, serial, revocation JSON or "", channel, event JSON.
 * Returns 1 stored, 0 same certificate already stored (idempotent retry), -1 conflict.
 */
export const PUT_CERTIFICATE = script(`
local cur = redis.call('GET', KEYS[1])
if cur then
  if cjson.decode(cur).fingerprint == ARGV[2] then return 0 end
  return -1
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], 0, ARGV[3])
redis.call('ZADD', KEYS[3], 0, ARGV[3])
if ARGV[4] ~= '' and redis.call('HSETNX', KEYS[4], ARGV[3], ARGV[4]) == 1 then
  redis.call('ZADD', KEYS[5], 0, ARGV[3])
  redis.call('PUBLISH', ARGV[5], ARGV[6])
end
return 1
`);

/**
 * KEYS: cert, revoked-hash, revoked-index. ARGV: serial, revocation JSON, channel, event JSON.
 * First revocation wins (HSETNX) and is published once. Returns false for an unknown serial,
 * else { record JSON, winning revocation JSON }.
 */
export const REVOKE = script(`
local cur = redis.call('GET', KEYS[1])
if not cur then return false end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 1 then
  redis.call('ZADD', KEYS[3], 0, ARGV[1])
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
return { cur, redis.call('HGET', KEYS[2], ARGV[1]) }
`);
