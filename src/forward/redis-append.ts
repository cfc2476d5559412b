import { PosternError } from "../errors.js";
import { isRedisReplyError, type RedisClient } from "../redis/index.js";
import { CLAIM_CHECK_LUA, CLAIM_COMMIT_LUA, type ClaimScript } from "../replay/index.js";

/**
 * The stream append, run between the nonce claim's check and commit (one script: the message is
 * enqueued exactly once or not at all). Before anything is written:
 * - a templated stream's name must be in the backend's set of names (KEYS[3]), or the set must
 *   hold fewer than the cap: else {'limit', <count>, ''} (existing names keep working);
 * - backpressure: a stream at `maxBacklog` (XLEN) or a consumer group at `maxGroupLag` answers
 *   {'full', 'backlog'|'lag', <value>}. A group that has been handed the newest entry has no
 *   lag; otherwise its lag is XINFO GROUPS `lag`, or XLEN when Redis cannot tell (after XDELs).
 * A configured consumer group is created (`$`, MKSTREAM) when the stream or the group does not
 * exist yet, before the XADD, so the group sees the new entry. MINID is Redis's TIME minus the
 * max age: the same clock as the `*` entry ids it is compared with. A new name joins the set
 * after the XADD, so a refused or replayed message adds nothing.
 * With the entry, the client certificate's DER is kept once per thumbprint in the backend's
 * hash of certificates (HSETNX), when the gateway sends it (only the first time it names a
 * thumbprint): entries carry `client-cert-sha256`, not the certificate.
 * KEYS[1] nonce key, KEYS[2] stream key, KEYS[3] certificate hash, KEYS[4] stream-name set
 * (templated names only). ARGV[1..3] as the claim's; ARGV[4] trim strategy (none|maxlen|minid),
 * ARGV[5] trim value (entries | max age ms), ARGV[6] trim operator (~ or =), ARGV[7] group
 * ('' = none), ARGV[8] max backlog (0 = none), ARGV[9] max group lag (0 = none), ARGV[10]
 * stream name ('' without KEYS[4]), ARGV[11] max streams (0 without KEYS[4]), ARGV[12]
 * certificate thumbprint, ARGV[13] its DER ('' = already kept), then field, value, ...
 */
const STREAM_APPEND_LUA = `
local function idAfter(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  if tonumber(ams) ~= tonumber(bms) then return tonumber(ams) > tonumber(bms) end
  return tonumber(aseq) > tonumber(bseq)
end
local stream, group = KEYS[2], ARGV[7]
local newName = #KEYS == 4 and redis.call('SISMEMBER', KEYS[4], ARGV[10]) == 0
if newName then
  local count = redis.call('SCARD', KEYS[4])
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
for i = 14, #ARGV do args[#args + 1] = ARGV[i] end
entry = redis.call('XADD', unpack(args))
if ARGV[13] ~= '' then redis.call('HSETNX', KEYS[3], ARGV[12], ARGV[13]) end
if newName then redis.call('SADD', KEYS[4], ARGV[10]) end
`;

/**
 * The Redis key of a backend's hash of client certificates (thumbprint, base64url SHA-256 of
 * the DER -> DER) that its stream entries name by `client-cert-sha256`; in the backend's hash slot.
 */
export function clientCertificatesKey(prefix: string, backend: string): string {
  return `${prefix}{${backend}}:meta:client-certs`;
}

/** The claim-and-append script of stream backends. */
export const CLAIM_AND_APPEND: ClaimScript = { name: "posternClaimAppend", lua: CLAIM_CHECK_LUA + STREAM_APPEND_LUA + CLAIM_COMMIT_LUA };

/** Where and how a message is appended: the stream key and its trim, group, backpressure and name cap. */
export interface StreamAppend {
  key: string;
  /** The backend's hash of client certificates by thumbprint. */
  certificatesKey: string;
  trim:
    | { strategy: "none" }
    | { strategy: "maxlen"; maxLength: number; approximate: boolean }
    | { strategy: "minid"; maxAgeSeconds: number; approximate: boolean };
  /** Created with the stream's first entry (or when missing) at `$`, so it sees that entry. */
  consumerGroup?: string | undefined;
  backpressure?: { maxBacklog?: number | undefined; maxGroupLag?: number | undefined; retryAfterSeconds: number } | undefined;
  /** For a templated stream name: the backend's set of names, this stream's name, and the cap. */
  names?: { key: string; stream: string; maxStreams: number } | undefined;
}

/** The script's keys after the nonce key (KEYS[2..4]). */
export function streamAppendKeys(stream: StreamAppend): string[] {
  return [stream.key, stream.certificatesKey, ...(stream.names ? [stream.names.key] : [])];
}

/**
 * The script's arguments after the claim's (ARGV[4..13]), before the entry's fields:
 * `certificate` is the client certificate's thumbprint and its DER, or an empty DER when the
 * hash already holds it.
 */
export function streamAppendArguments(stream: StreamAppend, certificate: { thumbprint: string; der: Uint8Array | "" }): Array<string | number | Buffer> {
  const trim = stream.trim;
  const [strategy, value, operator] =
    trim.strategy === "maxlen"
      ? ["maxlen", trim.maxLength, trim.approximate ? "~" : "="]
      : trim.strategy === "minid"
        ? ["minid", trim.maxAgeSeconds * 1000, trim.approximate ? "~" : "="]
        : ["none", 0, "="];
  const bp = stream.backpressure;
  const names = stream.names;
  const der = certificate.der === "" ? "" : Buffer.from(certificate.der.buffer, certificate.der.byteOffset, certificate.der.byteLength);
  return [strategy, value, operator, stream.consumerGroup ?? "", bp?.maxBacklog ?? 0, bp?.maxGroupLag ?? 0, names?.stream ?? "", names?.maxStreams ?? 0, certificate.thumbprint, der];
}

/** The script's own refusals as the client hears them; nothing was claimed or appended. */
export function appendRefusal(reason: string, values: [string, string], stream: StreamAppend, backend: string): PosternError {
  if (reason === "full") {
    const limit = values[0] === "lag" ? "consumer group lag" : "stream backlog";
    return new PosternError("backend-unavailable", `the ${limit} is at its limit; nothing was accepted`, {
      extensions: { retryAfterSeconds: stream.backpressure?.retryAfterSeconds ?? 5 },
    });
  }
  if (reason === "limit") {
    return new PosternError("stream-limit", `backend ${backend} holds ${stream.names?.maxStreams ?? values[0]} streams, its maximum; existing streams still take messages`);
  }
  return new PosternError("internal", `the append script refused: ${reason}`);
}

/**
 * Creates a stream's consumer group at startup (`XGROUP CREATE <key> <group> $ MKSTREAM`); an
 * existing group is kept as it is. Resolves false when Redis did not answer: the append script
 * then creates the group with the stream's first entry.
 * @throws PosternError backend-unavailable when Redis refuses (the key is not a stream).
 */
export async function createConsumerGroup(redis: RedisClient, key: string, group: string): Promise<boolean> {
  try {
    await redis.xgroup("CREATE", key, group, "$", "MKSTREAM");
    return true;
  } catch (error) {
    if (!isRedisReplyError(error)) return false;
    if (String((error as Error).message).startsWith("BUSYGROUP")) return true;
    throw new PosternError("backend-unavailable", `consumer group ${group} could not be created`, { cause: error });
  }
}
