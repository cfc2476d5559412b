import { isRedisReplyError, type RedisClient } from "../redis/index.js";
import { PosternError } from "../errors.js";
import { type ClaimResult, type NonceClaim, nonceKey } from "./nonce.js";

/**
 * Claims a nonce and, for stream backends, XADDs the entry in the same script: the message is
 * enqueued exactly once or not at all. The claim stores "<digest> <messageId> <entryId>" so a
 * retry with the same digest gets the original ids back.
 * Before claiming, a stream append checks backpressure: a stream at `maxBacklog` (XLEN) or a
 * consumer group at `maxGroupLag` returns {'full', 'backlog'|'lag', <value>} and writes nothing,
 * so the nonce stays unspent. A group that has been handed the newest entry has no lag;
 * otherwise its lag is XINFO GROUPS `lag`, or XLEN when Redis cannot tell (after XDELs).
 * A configured consumer group is created (`$`, MKSTREAM) when the stream or the group does
 * not exist yet, before the XADD, so the group sees the new entry. MINID is Redis's TIME
 * minus the max age: the same clock as the `*` entry ids it is compared with.
 * A templated stream's name must be in the backend's set of stream names (KEYS[3]), or the set
 * must hold fewer than max streams: else {'limit', <count>, ''} and nothing is written (the
 * nonce stays unspent, existing names keep working). The name joins the set with its first
 * entry, after the XADD, so a refused or replayed message adds nothing.
 * KEYS[1] nonce key, KEYS[2] stream key (optional), KEYS[3] stream-name set (optional, with KEYS[2]).
 * ARGV: digest, messageId, expire-at ms, then with KEYS[2]: trim strategy (none|maxlen|minid),
 * trim value (entries | max age ms), trim operator (~ or =), group ('' = none),
 * max backlog (0 = none), max group lag (0 = none), stream name ('' without KEYS[3]),
 * max streams (0 without KEYS[3]), field, value, ...
 */
const CLAIM_SCRIPT = `
local function idAfter(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  if tonumber(ams) ~= tonumber(bms) then return tonumber(ams) > tonumber(bms) end
  return tonumber(aseq) > tonumber(bseq)
end
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
if #KEYS >= 2 then
  local stream, group = KEYS[2], ARGV[7]
  local newName = #KEYS == 3 and redis.call('SISMEMBER', KEYS[3], ARGV[10]) == 0
  if newName then
    local count = redis.call('SCARD', KEYS[3])
    if count >= tonumber(ARGV[11]) then return {'limit', tostring(count), ''} end
  end
  local maxBacklog, maxLag = tonumber(ARGV[8]), tonumber(ARGV[9])
  if maxBacklog > 0 then
    local length = redis.call('XLEN', stream)
    if length >= maxBacklog then return {'full', 'backlog', tostring(length)} end
  end
  if group ~= '' then
    local info = nil
    if redis.call('EXISTS', stream) == 1 then
      for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
        local fields = {}
        for i = 1, #g, 2 do fields[g[i]] = g[i + 1] end
        if fields['name'] == group then info = fields end
      end
    end
    if not info then
      redis.call('XGROUP', 'CREATE', stream, group, '$', 'MKSTREAM')
    elseif maxLag > 0 then
      local newest = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
      if newest and idAfter(newest[1], info['last-delivered-id']) then
        -- Redis reports no lag after some XDELs; XLEN then bounds it from above.
        local lag = info['lag']
        if type(lag) ~= 'number' then lag = redis.call('XLEN', stream) end
        if lag >= maxLag then return {'full', 'lag', tostring(lag)} end
      end
    end
  end
  local args = {stream}
  if ARGV[4] == 'maxlen' then
    args = {stream, 'MAXLEN', ARGV[6], ARGV[5]}
  elseif ARGV[4] == 'minid' then
    local now = redis.call('TIME')
    local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
    args = {stream, 'MINID', ARGV[6], string.format('%.0f', nowMs - tonumber(ARGV[5]))}
  end
  args[#args + 1] = '*'
  for i = 12, #ARGV do args[#args + 1] = ARGV[i] end
  entry = redis.call('XADD', unpack(args))
  if newName then redis.call('SADD', KEYS[3], ARGV[10]) end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. entry, 'PXAT', ARGV[3])
return {'claimed', ARGV[2], entry}
`;

/** Where and how `claimAndAppend` appends: the stream key and its trim and backpressure policy. */
export interface StreamAppend {
  key: string;
  trim:
    | { strategy: "none" }
    | { strategy: "maxlen"; maxLength: number; approximate: boolean }
    | { strategy: "minid"; maxAgeSeconds: number; approximate: boolean };
  /** Created with the stream's first entry (or when missing) at `$`, so it sees that entry. */
  consumerGroup?: string | undefined;
  backpressure?: { maxBacklog?: number | undefined; maxGroupLag?: number | undefined; retryAfterSeconds: number } | undefined;
  /** For a templated stream name: the backend's set of names (`streamNamesKey`), this stream's name, and the cap. */
  names?: { key: string; stream: string; maxStreams: number } | undefined;
}

/** The claim script's ARGV after digest, message id and expiry, for one stream append (ARGV[4..11]). */
export function streamAppendArguments(stream: StreamAppend): Array<string | number> {
  const trim = stream.trim;
  const [strategy, value, operator] =
    trim.strategy === "maxlen"
      ? ["maxlen", trim.maxLength, trim.approximate ? "~" : "="]
      : trim.strategy === "minid"
        ? ["minid", trim.maxAgeSeconds * 1000, trim.approximate ? "~" : "="]
        : ["none", 0, "="];
  const bp = stream.backpressure;
  const names = stream.names;
  return [strategy, value, operator, stream.consumerGroup ?? "", bp?.maxBacklog ?? 0, bp?.maxGroupLag ?? 0, names?.stream ?? "", names?.maxStreams ?? 0];
}

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

type ClaimCommand = (numKeys: number, ...args: (string | number | Buffer)[]) => Promise<[string, string, string]>;


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
  claim(claim: NonceClaim, messageId: string): Promise<ClaimResult> {
    return this.run([nonceKey(this.keyPrefix, claim)], claim, messageId, [], []);
  }

  /**
   * Claims a nonce and appends `fields` to `stream` atomically, trimming it as configured.
   * @throws PosternError backend-unavailable (with `retryAfterSeconds`) when the stream's
   * backlog or its group's lag is at the backpressure limit: then no nonce is claimed and
   * nothing is added. stream-limit (422) when the stream would be a new name beyond
   * `names.maxStreams`: nothing is claimed or added either. replay-store-unavailable when Redis fails.
   */
  claimAndAppend(
    claim: NonceClaim,
    messageId: string,
    stream: StreamAppend,
    fields: ReadonlyArray<readonly [string, string | Buffer]>,
  ): Promise<ClaimResult> {
    const keys = [nonceKey(this.keyPrefix, claim), stream.key, ...(stream.names ? [stream.names.key] : [])];
    return this.run(keys, claim, messageId, streamAppendArguments(stream), fields.flat(), stream);
  }

  /**
   * Creates a stream's consumer group at startup (`XGROUP CREATE <key> <group> $ MKSTREAM`);
   * an existing group is kept as it is. Resolves false when Redis did not answer: the claim
   * script then creates the group with the stream's first entry.
   * @throws PosternError backend-unavailable when Redis refuses (the key is not a stream).
   */
  async createConsumerGroup(key: string, group: string): Promise<boolean> {
    try {
      await this.redis.xgroup("CREATE", key, group, "$", "MKSTREAM");
      return true;
    } catch (error) {
      if (!isRedisReplyError(error)) return false;
      if (String((error as Error).message).startsWith("BUSYGROUP")) return true;
      throw new PosternError("backend-unavailable", `consumer group ${group} could not be created`, { cause: error });
    }
  }

  private async run(
    keys: string[],
    claim: NonceClaim,
    messageId: string,
    streamArgs: ReadonlyArray<string | number>,
    fieldArgs: ReadonlyArray<string | Buffer>,
    stream?: StreamAppend,
  ): Promise<ClaimResult> {
    const command = (this.redis as unknown as { posternClaim: ClaimCommand }).posternClaim.bind(this.redis);
    let reply: [string, string, string];
    try {
      reply = await command(keys.length, ...keys, claim.digest, messageId, claim.expiresAtMs, ...streamArgs, ...fieldArgs);
    } catch (cause) {
      if (neverReachedRedis(cause)) {
        throw new PosternError("replay-store-unavailable", "the replay store cannot be reached; nothing was forwarded", {
          cause,
          extensions: { retryAfterSeconds: 1 },
        });
      }
      if (!stream) {
        // An HTTP backend forwards only after its claim: nothing was forwarded. The claim may
        // have landed, so give it back once Redis answers, or the same request stays "replayed".
        this.releaseWhenBack(claim, messageId);
        throw new PosternError("replay-store-unavailable", "the replay store did not answer in time; nothing was forwarded", {
          cause,
          extensions: { retryAfterSeconds: 1 },
        });
      }
      // The script may be in Redis's socket buffer and run later: the entry may or may not be
      // added. An exact re-send is idempotent, so that is what the client is told to do.
      throw new PosternError("replay-store-timeout", "the replay store did not answer in time; retry the same signed request", {
        cause,
        extensions: { retryAfterSeconds: 1 },
      });
    }
    const [outcome, id, entryId] = reply;
    if (outcome === "full") {
      const limit = id === "lag" ? "consumer group lag" : "stream backlog";
      throw new PosternError("backend-unavailable", `the ${limit} is at its limit; nothing was accepted`, {
        extensions: { retryAfterSeconds: stream?.backpressure?.retryAfterSeconds ?? 5 },
      });
    }
    if (outcome === "limit") {
      throw new PosternError("stream-limit", `backend ${claim.backend} holds ${stream?.names?.maxStreams ?? id} streams, its maximum; existing streams still take messages`);
    }
    if (outcome === "replayed") return { outcome: "replayed" };
    // A duplicate is confirmed only once its original is replicated too.
    await this.awaitReplicas(claim, messageId, stream !== undefined && outcome === "claimed" ? "stream" : stream ? "duplicate" : "claim");
    const ids = { messageId: id, ...(entryId ? { entryId } : {}) };
    return outcome === "claimed" ? { outcome: "claimed", ...ids } : { outcome: "duplicate", ...ids };
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
