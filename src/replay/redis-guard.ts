import { Cluster, Redis } from "ioredis";
import { PosternError } from "../errors.js";
import type { ClaimResult, NonceClaim } from "./nonce.js";
import { nonceKey } from "./nonce.js";

/**
 * Claims a nonce and, for stream backends, XADDs the entry in the same script: the message is
 * enqueued exactly once or not at all. The claim stores "<digest> <messageId> <entryId>" so a
 * retry with the same digest gets the original ids back.
 * KEYS[1] nonce key, KEYS[2] stream key (optional).
 * ARGV: digest, messageId, expire-at ms, maxlen (0 = no trim), field, value, ...
 */
const CLAIM_SCRIPT = `
local prior = redis.call('GET', KEYS[1])
if prior then
  local first = string.find(prior, ' ', 1, true)
  if first and string.sub(prior, 1, first - 1) == ARGV[1] then
    local second = string.find(prior, ' ', first + 1, true) or (#prior + 1)
    return {'duplicate', string.sub(prior, first + 1, second - 1), string.sub(prior, second + 1)}
  end
  return {'replayed', '', ''}
end
local entry = ''
if #KEYS == 2 then
  local args = {KEYS[2]}
  if tonumber(ARGV[4]) > 0 then
    args[#args + 1] = 'MAXLEN'; args[#args + 1] = '~'; args[#args + 1] = ARGV[4]
  end
  args[#args + 1] = '*'
  for i = 5, #ARGV do args[#args + 1] = ARGV[i] end
  entry = redis.call('XADD', unpack(args))
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. entry, 'PXAT', ARGV[3])
return {'claimed', ARGV[2], entry}
`;

/** Deletes a claim only if it still holds this message id (KEYS[1] nonce key; ARGV[1] message id). */
const RELEASE_SCRIPT = `
local held = redis.call('GET', KEYS[1])
if held then
  local first = string.find(held, ' ', 1, true)
  local second = first and string.find(held, ' ', first + 1, true)
  if first and string.sub(held, first + 1, (second or (#held + 1)) - 1) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
  end
end
return 0
`;

type ClaimCommand = (numKeys: number, ...args: (string | number | Buffer)[]) => Promise<[string, string, string]>;

/** A standalone or cluster client: the guard uses the commands both have. */
export type RedisClient = Redis | Cluster;

export interface RedisReplayGuardOptions {
  redis: RedisClient;
  keyPrefix: string;
}

/**
 * The shared replay guard for several replicas. Fails closed: any Redis error becomes
 * `replay-store-unavailable` (503) and nothing is forwarded.
 */
export class RedisReplayGuard {
  private readonly redis: RedisClient;
  private readonly keyPrefix: string;

  constructor(options: RedisReplayGuardOptions) {
    this.redis = options.redis;
    this.keyPrefix = options.keyPrefix;
    this.redis.defineCommand("posternClaim", { lua: CLAIM_SCRIPT });
    this.redis.defineCommand("posternRelease", { numberOfKeys: 1, lua: RELEASE_SCRIPT });
  }

  async release(claim: NonceClaim, messageId: string): Promise<void> {
    const release = (this.redis as unknown as { posternRelease: (key: string, id: string) => Promise<number> }).posternRelease.bind(this.redis);
    try {
      await release(nonceKey(this.keyPrefix, claim), messageId);
    } catch {
      // The claim then expires with the signature's window: the client re-signs. Fail closed.
    }
  }

  /** Claims a nonce for an HTTP backend (the forward happens after). */
  claim(claim: NonceClaim, messageId: string): Promise<ClaimResult> {
    return this.run([nonceKey(this.keyPrefix, claim)], claim, messageId, 0, []);
  }

  /** Claims a nonce and appends `fields` to `stream` atomically. */
  claimAndAppend(
    claim: NonceClaim,
    messageId: string,
    stream: { key: string; maxLength: number },
    fields: ReadonlyArray<readonly [string, string | Buffer]>,
  ): Promise<ClaimResult> {
    return this.run([nonceKey(this.keyPrefix, claim), stream.key], claim, messageId, stream.maxLength, fields.flat());
  }

  private async run(
    keys: string[],
    claim: NonceClaim,
    messageId: string,
    maxLength: number,
    fieldArgs: ReadonlyArray<string | Buffer>,
  ): Promise<ClaimResult> {
    const command = (this.redis as unknown as { posternClaim: ClaimCommand }).posternClaim.bind(this.redis);
    let reply: [string, string, string];
    try {
      reply = await command(keys.length, ...keys, claim.digest, messageId, claim.expiresAtMs, maxLength, ...fieldArgs);
    } catch (cause) {
      throw new PosternError("replay-store-unavailable", "the replay store did not answer; nothing was forwarded", {
        cause,
        extensions: { retryAfterSeconds: 1 },
      });
    }
    const [outcome, id, entryId] = reply;
    if (outcome === "replayed") return { outcome: "replayed" };
    const ids = { messageId: id, ...(entryId ? { entryId } : {}) };
    return outcome === "claimed" ? { outcome: "claimed", ...ids } : { outcome: "duplicate", ...ids };
  }
}

/**
 * Opens an ioredis client (standalone, or Redis Cluster from comma-separated seed URLs) that
 * fails fast while Redis is away (no offline queue) and reconnects by itself. Resolves once
 * connected, or after `waitSeconds` with a client that keeps trying (the caller reports
 * not-ready meanwhile).
 */
export async function connectRedis(
  url: string,
  options: { cluster?: boolean; commandTimeoutSeconds: number; waitSeconds?: number; onState?: (up: boolean) => void },
): Promise<RedisClient> {
  const common = {
    commandTimeout: options.commandTimeoutSeconds * 1000,
    connectTimeout: 5000,
    maxRetriesPerRequest: 0,
  };
  const retry = (attempt: number) => Math.min(100 * attempt, 2000);
  const redis: RedisClient = options.cluster
    ? new Cluster(
        url.split(",").map((seed) => {
          const u = new URL(seed.trim());
          return { host: u.hostname, port: Number(u.port || 6379) };
        }),
        {
          lazyConnect: true,
          enableOfflineQueue: false,
          clusterRetryStrategy: retry,
          redisOptions: { ...common, ...credentials(url.split(",")[0]!) },
        },
      )
    : new Redis(url, { ...common, lazyConnect: true, enableOfflineQueue: false, retryStrategy: retry });
  redis.on("ready", () => options.onState?.(true));
  redis.on("close", () => options.onState?.(false));
  redis.on("end", () => options.onState?.(false));
  // ioredis emits 'error' on every failed reconnect; state is reported through onState.
  redis.on("error", () => undefined);
  const connected = redis.connect().then(
    () => true,
    () => false,
  );
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), (options.waitSeconds ?? 3) * 1000)));
  await Promise.race([connected, waited]);
  clearTimeout(timer);
  return redis;
}

function credentials(seed: string): { username?: string; password?: string; tls?: object } {
  const u = new URL(seed.trim());
  return {
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
  };
}
