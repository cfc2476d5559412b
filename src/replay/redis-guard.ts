import { isRedisReplyError, type RedisClient } from "../redis/index.js";
import { PosternError } from "../errors.js";
import { type ClaimResult, type NonceClaim, nonceKey } from "./nonce.js";

/**
 * The nonce claim as Lua, in two halves that a script puts around its own work: the check
 * (KEYS[1] is the nonce key; a prior claim with the same fingerprint, ARGV[1], is a duplicate
 * and names the original ids; any other prior claim is a replay) and the commit (stores
 * "<fingerprint> <messageId> <entryId>" until ARGV[3], the expiry in ms, and returns
 * {'claimed', messageId, entry}). Between them a script may set `entry` (the stream entry id it
 * appended), or return {'<reason>', a, b} to refuse without claiming anything.
 * ARGV[1] fingerprint, ARGV[2] message id, ARGV[3] expiry (ms); a script's own arguments follow.
 */
export const CLAIM_CHECK_LUA = `
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
`;
export const CLAIM_COMMIT_LUA = `
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. entry, 'PXAT', ARGV[3])
return {'claimed', ARGV[2], entry}
`;

/** A claim script: a name for ioredis to register it under, and its Lua (check, own work, commit). */
export interface ClaimScript {
  name: string;
  lua: string;
}

/** The plain claim of an HTTP backend: check and commit, nothing between. */
const CLAIM_ONLY: ClaimScript = { name: "posternClaim", lua: CLAIM_CHECK_LUA + CLAIM_COMMIT_LUA };

/** What a claim script answered: a claim outcome, or its own refusal (`reason`, two values), with nothing claimed. */
export type ScriptOutcome = ClaimResult | { outcome: "refused"; reason: string; values: [string, string] };

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

/**
 * True when no message can have been added: ioredis refused to send the command (not
 * connected, no offline queue), or Redis answered with an error (it refuses a writing script
 * before it starts when out of memory, and the script's XADD is its last step but the claim's
 * SET). Otherwise, a timeout or a connection lost after sending, the outcome is unknown.
 */
function neverReachedRedis(error: unknown): boolean {
  if (isRedisReplyError(error)) return true;
  return /enableOfflineQueue|isn't writeable|isn't ready/i.test(String((error as Error)?.message ?? ""));
}

type ScriptCommand = (numKeys: number, ...args: (string | number | Buffer)[]) => Promise<[string, string, string]>;


export interface RedisReplayGuardOptions {
  redis: RedisClient;
  keyPrefix: string;
  /**
   * WAIT for this many replicas after each claim (and append) before answering; fewer in
   * `timeoutMs` is `replication-timeout`. Absent or 0: the master's answer is enough.
   */
  waitReplicas?: { replicas: number; timeoutMs: number } | undefined;
}

/**
 * The shared replay guard for several replicas. Fails closed: any Redis error becomes
 * `replay-store-unavailable` (503) and nothing is forwarded.
 */
export class RedisReplayGuard {
  private readonly redis: RedisClient;
  private readonly keyPrefix: string;
  private readonly waitReplicas: { replicas: number; timeoutMs: number } | undefined;

  constructor(options: RedisReplayGuardOptions) {
    this.redis = options.redis;
    this.keyPrefix = options.keyPrefix;
    this.waitReplicas = options.waitReplicas?.replicas ? options.waitReplicas : undefined;
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

  /** Retries `release` every half second until it is answered or the claim would have expired. */
  private releaseWhenBack(claim: NonceClaim, messageId: string): void {
    const release = (this.redis as unknown as { posternRelease: (key: string, id: string) => Promise<number> }).posternRelease.bind(this.redis);
    const attempt = () => {
      if (Date.now() >= claim.expiresAtMs) return;
      release(nonceKey(this.keyPrefix, claim), messageId).catch(() => setTimeout(attempt, 500).unref());
    };
    attempt();
  }

  /** Claims a nonce for an HTTP backend (the forward happens after). */
  async claim(claim: NonceClaim, messageId: string): Promise<ClaimResult> {
    const result = await this.run(CLAIM_ONLY, [], claim, messageId, [], true);
    if (result.outcome === "refused") throw new PosternError("internal", `the claim script refused: ${result.reason}`);
    return result;
  }

  /**
   * Runs `script` (built from CLAIM_CHECK_LUA and CLAIM_COMMIT_LUA) with the nonce key first,
   * then `keys`, then its own `args`, so a claim and the script's own write (a stream append)
   * happen together or not at all. Redis failures, timeouts and `redis.waitReplicas` are
   * handled as for every claim; the script's own refusals come back as `refused`.
   * @throws PosternError replay-store-unavailable when Redis cannot be reached, replay-store-timeout
   * when it did not answer in time (the outcome is unknown), replication-timeout.
   */
  claimWith(script: ClaimScript, keys: readonly string[], claim: NonceClaim, messageId: string, args: ReadonlyArray<string | number | Buffer>): Promise<ScriptOutcome> {
    return this.run(script, keys, claim, messageId, args, false);
  }

  private async run(
    script: ClaimScript,
    keys: readonly string[],
    claim: NonceClaim,
    messageId: string,
    args: ReadonlyArray<string | number | Buffer>,
    forwardsAfterClaim: boolean,
  ): Promise<ScriptOutcome> {
    const command = this.command(script);
    let reply: [string, string, string];
    try {
      reply = await command(keys.length + 1, nonceKey(this.keyPrefix, claim), ...keys, claim.digest, messageId, claim.expiresAtMs, ...args);
    } catch (cause) {
      if (neverReachedRedis(cause)) {
        throw new PosternError("replay-store-unavailable", "the replay store cannot be reached; nothing was forwarded", {
          cause,
          extensions: { retryAfterSeconds: 1 },
        });
      }
      if (forwardsAfterClaim) {
        // An HTTP backend forwards only after its claim: nothing was forwarded. The claim may
        // have landed, so give it back once Redis answers, or the same request stays "replayed".
        this.releaseWhenBack(claim, messageId);
        throw new PosternError("replay-store-unavailable", "the replay store did not answer in time; nothing was forwarded", {
          cause,
          extensions: { retryAfterSeconds: 1 },
        });
      }
      // The script may be in Redis's socket buffer and run later: its write may or may not
      // happen. An exact re-send is idempotent, so that is what the client is told to do.
      throw new PosternError("replay-store-timeout", "the replay store did not answer in time; retry the same signed request", {
        cause,
        extensions: { retryAfterSeconds: 1 },
      });
    }
    const [outcome, id, entryId] = reply;
    if (outcome === "replayed") return { outcome: "replayed" };
    if (outcome !== "claimed" && outcome !== "duplicate") return { outcome: "refused", reason: outcome, values: [id, entryId] };
    // A duplicate is confirmed only once its original is replicated too.
    await this.awaitReplicas(claim, messageId, forwardsAfterClaim ? "claim" : outcome === "claimed" ? "stream" : "duplicate");
    const ids = { messageId: id, ...(entryId ? { entryId } : {}) };
    return outcome === "claimed" ? { outcome: "claimed", ...ids } : { outcome: "duplicate", ...ids };
  }

  /** The script as an ioredis command, registered once (ioredis sends it by SHA, and loads it when Redis lacks it). */
  private command(script: ClaimScript): ScriptCommand {
    const client = this.redis as unknown as Record<string, ScriptCommand | undefined>;
    if (!client[script.name]) this.redis.defineCommand(script.name, { lua: script.lua });
    return (client[script.name] as ScriptCommand).bind(this.redis);
  }

  /**
   * WAIT for `waitReplicas` replicas to hold this connection's writes so far. A failover can
   * then not lose an acknowledged message or a spent nonce.
   * @throws PosternError replication-timeout (the write is on the master; an exact re-send is
   * idempotent). For an HTTP claim, nothing was forwarded, so the claim is given back first.
   */
  private async awaitReplicas(claim: NonceClaim, messageId: string, what: "stream" | "duplicate" | "claim"): Promise<void> {
    if (!this.waitReplicas) return;
    const { replicas, timeoutMs } = this.waitReplicas;
    let acknowledged = -1;
    try {
      acknowledged = await this.redis.wait(replicas, timeoutMs);
    } catch {
      // Counted as not replicated.
    }
    if (acknowledged >= replicas) return;
    if (what === "claim") this.releaseWhenBack(claim, messageId);
    throw new PosternError(
      "replication-timeout",
      what === "claim"
        ? `fewer than ${replicas} Redis replicas confirmed the nonce in time; nothing was forwarded`
        : `fewer than ${replicas} Redis replicas confirmed the message in time; retry the same signed request`,
      { extensions: { retryAfterSeconds: 1 } },
    );
  }
}
