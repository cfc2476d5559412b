/**
 * Lua scripts of the Redis PKI store. Each runs atomically on one node; every key it touches
 * shares the store's hash tag, so they also work on Redis Cluster. Scripts are sent by SHA
 * first and by body only when the server does not know them yet.
 */
import { createHash } from "node:crypto";
import type { RedisClient } from "../../redis/index.js";

/** A script with its SHA-1, run with EVALSHA and a NOSCRIPT fallback. */
export interface LuaScript {
  body: string;
  sha: string;
}

function script(body: string): LuaScript {
  return { body, sha: createHash("sha1").update(body).digest("hex") };
}

/** Runs `s` with `keys` and `args`, loading it on first use (or after a SCRIPT FLUSH). */
export async function runScript(redis: RedisClient, s: LuaScript, keys: string[], args: (string | number)[]): Promise<unknown> {
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

/**
 * KEYS: token, token index. ARGV: record JSON, PXAT ms, token hash, expiry ms, now ms.
 * SET NX so a token is created once; the index (a sorted set by expiry) lets backups list
 * tokens without SCAN, and loses its expired members here. Returns 1 created, 0 exists.
 */
export const PUT_TOKEN = script(`
if not redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2], 'NX') then return 0 end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[5])
return 1
`);

/**
 * KEYS: token, failure counter, token index. ARGV: max failures, token hash.
 * Counts one refused use; the counter expires with the token; the max-th failure deletes the
 * token. Returns the failures so far, 0 for an unknown token.
 */
export const FAIL_TOKEN = script(`
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then return 0 end
local n = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ttl)
if n >= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[2])
end
return n
`);

/**
 * KEYS: CRL state hash, legacy cRLNumber counter. ARGV: number (decimal), thisUpdate ms,
 * nextUpdate ms, digest, DER (base64). Stores the state only when its number is above both
 * the stored one and the legacy counter (numbers compared as decimal strings: cRLNumber may
 * exceed Lua's doubles). Returns the state stored afterwards as HGETALL pairs.
 */
export const PUT_CRL_STATE = script(`
local function above(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end
local cur = redis.call('HGET', KEYS[1], 'n') or '0'
local legacy = redis.call('GET', KEYS[2]) or '0'
if above(legacy, cur) then cur = legacy end
if above(ARGV[1], cur) then
  redis.call('HSET', KEYS[1], 'n', ARGV[1], 'tu', ARGV[2], 'nu', ARGV[3], 'digest', ARGV[4], 'der', ARGV[5])
end
return redis.call('HGETALL', KEYS[1])
`);
