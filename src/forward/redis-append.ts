import { createHash } from "node:crypto";
import { PosternError } from "../errors.js";
import { isRedisReplyError, type RedisClient } from "../redis/index.js";
import { CLAIM_CHECK_LUA, CLAIM_COMMIT_LUA, type ClaimScript } from "../replay/index.js";

/**
 * The stream append, run between the nonce claim's check and commit (one script: the message is
 * enqueued exactly once or not at all). Before anything is written:
 * - a templated stream's name must be in the backend's set of names (KEYS[4]), or the set must
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
 *
 * The Lua is written for one stream's shape (`StreamShape`): its trim, limits and cap are
 * numbers in the script, and the checks it has no use for are left out. Each argument and each
 * branch costs redis-server per message: against one script for every shape, with all of them
 * as arguments, an A/B at 8 messages per pipeline measured 33 -> 28 us of its CPU per message
 * (`npm run bench -- redis` reports the script's cost against plain XADDs).
 * KEYS[1] nonce key, KEYS[2] stream key, KEYS[3] certificate hash, KEYS[4] stream-name set
 * (templated names only). ARGV[1..3] as the claim's; ARGV[4] certificate thumbprint, ARGV[5]
 * its DER ('' = already kept); then the group's name (with a group), then the stream's name
 * (templated names only); then field, value, ... (from ARGV[fieldsAt]).
 */
function streamAppendLua(shape: StreamShape): string {
  const group = shape.consumerGroup !== undefined;
  const named = shape.maxStreams !== undefined;
  const groupAt = 6;
  const nameAt = group ? 7 : 6;
  const fieldsAt = 6 + (group ? 1 : 0) + (named ? 1 : 0);
  const lines = ["local stream = KEYS[2]"];
  if (named) {
    lines.push(
      `local newName = redis.call('SISMEMBER', KEYS[4], ARGV[${nameAt}]) == 0`,
      "if newName then",
      "  local count = redis.call('SCARD', KEYS[4])",
      `  if count >= ${int(shape.maxStreams!)} then return {'limit', tostring(count), ''} end`,
      "end",
    );
  }
  if (shape.maxBacklog !== undefined) {
    lines.push(
      "local length = redis.call('XLEN', stream)",
      `if length >= ${int(shape.maxBacklog)} then return {'full', 'backlog', tostring(length)} end`,
    );
  }
  if (group) {
    lines.push(
      `local group = ARGV[${groupAt}]`,
      "local info = nil",
      "if redis.call('EXISTS', stream) == 1 then",
      "  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do",
      "    local fields = {}",
      "    for i = 1, #g, 2 do fields[g[i]] = g[i + 1] end",
      "    if fields['name'] == group then info = fields end",
      "  end",
      "end",
      "if not info then",
      "  redis.call('XGROUP', 'CREATE', stream, group, '$', 'MKSTREAM')",
    );
    if (shape.maxGroupLag !== undefined) {
      lines.push(
        "else",
        "  local newest = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]",
        "  local ams, aseq, bms, bseq",
        "  if newest then",
        "    ams, aseq = string.match(newest[1], '^(%d+)-(%d+)$')",
        "    bms, bseq = string.match(info['last-delivered-id'], '^(%d+)-(%d+)$')",
        "  end",
        "  if newest and (tonumber(ams) > tonumber(bms) or (tonumber(ams) == tonumber(bms) and tonumber(aseq) > tonumber(bseq))) then",
        "    -- Redis reports no lag after some XDELs; XLEN then bounds it from above.",
        "    local lag = info['lag']",
        "    if type(lag) ~= 'number' then lag = redis.call('XLEN', stream) end",
        `    if lag >= ${int(shape.maxGroupLag)} then return {'full', 'lag', tostring(lag)} end`,
        "  end",
      );
    }
    lines.push("end");
  }
  const trim = shape.trim;
  const operator = trim.strategy !== "none" && trim.approximate ? "~" : "=";
  if (trim.strategy === "maxlen") {
    lines.push(`entry = redis.call('XADD', stream, 'MAXLEN', '${operator}', '${int(trim.maxLength)}', '*', unpack(ARGV, ${fieldsAt}))`);
  } else if (trim.strategy === "minid") {
    lines.push(
      "local now = redis.call('TIME')",
      "local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)",
      `entry = redis.call('XADD', stream, 'MINID', '${operator}', string.format('%.0f', nowMs - ${int(trim.maxAgeSeconds * 1000)}), '*', unpack(ARGV, ${fieldsAt}))`,
    );
  } else {
    lines.push(`entry = redis.call('XADD', stream, '*', unpack(ARGV, ${fieldsAt}))`);
  }
  lines.push("if ARGV[5] ~= '' then redis.call('HSETNX', KEYS[3], ARGV[4], ARGV[5]) end");
  if (named) lines.push(`if newName then redis.call('SADD', KEYS[4], ARGV[${nameAt}]) end`);
  return `\n${lines.join("\n")}\n`;
}

/** A number written into Lua: a safe integer, or the configuration was not checked. */
function int(value: number): string {
  if (!Number.isSafeInteger(value)) throw new Error(`not an integer: ${value}`);
  return String(value);
}

/**
 * The Redis key of a backend's hash of client certificates (thumbprint, base64url SHA-256 of
 * the DER -> DER) that its stream entries name by `client-cert-sha256`; in the backend's hash slot.
 */
export function clientCertificatesKey(prefix: string, backend: string): string {
  return `${prefix}{${backend}}:meta:client-certs`;
}

/**
 * What the script of a stream is written for: everything about the append that is the same for
 * each of its messages (the configuration of its backend).
 */
export interface StreamShape {
  trim:
    | { strategy: "none" }
    | { strategy: "maxlen"; maxLength: number; approximate: boolean }
    | { strategy: "minid"; maxAgeSeconds: number; approximate: boolean };
  /** Created with the stream's first entry (or when missing) at `$`, so it sees that entry. */
  consumerGroup?: string | undefined;
  maxBacklog?: number | undefined;
  maxGroupLag?: number | undefined;
  /** Templated names only: how many names the backend's set may hold. */
  maxStreams?: number | undefined;
}

/** Where and how a message is appended: the stream key and its trim, group, backpressure and name cap. */
export interface StreamAppend {
  key: string;
  /** The backend's hash of client certificates by thumbprint. */
  certificatesKey: string;
  trim: StreamShape["trim"];
  /** Created with the stream's first entry (or when missing) at `$`, so it sees that entry. */
  consumerGroup?: string | undefined;
  backpressure?: { maxBacklog?: number | undefined; maxGroupLag?: number | undefined; retryAfterSeconds: number } | undefined;
  /** For a templated stream name: the backend's set of names, this stream's name, and the cap. */
  names?: { key: string; stream: string; maxStreams: number } | undefined;
}

/** Scripts made so far, by their shape (a handful: one per stream backend's configuration). */
const scripts = new Map<string, ClaimScript>();

/** The claim-and-append script for `stream`'s shape, made once per shape. */
export function claimAndAppendScript(stream: StreamAppend): ClaimScript {
  const shape: StreamShape = {
    trim: stream.trim,
    consumerGroup: stream.consumerGroup,
    maxBacklog: stream.backpressure?.maxBacklog,
    maxGroupLag: stream.consumerGroup === undefined ? undefined : stream.backpressure?.maxGroupLag,
    maxStreams: stream.names?.maxStreams,
  };
  const id = JSON.stringify([shape.trim, shape.consumerGroup !== undefined, shape.maxBacklog, shape.maxGroupLag, shape.maxStreams]);
  let script = scripts.get(id);
  if (script === undefined) {
    const lua = CLAIM_CHECK_LUA + streamAppendLua(shape) + CLAIM_COMMIT_LUA;
    // ioredis keeps a command per name: the name follows the text, so two shapes never share one.
    script = { name: `posternClaimAppend_${createHash("sha1").update(lua).digest("hex").slice(0, 16)}`, lua };
    scripts.set(id, script);
  }
  return script;
}

/** The script's keys after the nonce key (KEYS[2..4]). */
export function streamAppendKeys(stream: StreamAppend): string[] {
  return [stream.key, stream.certificatesKey, ...(stream.names ? [stream.names.key] : [])];
}

/**
 * The script's arguments after the claim's (ARGV[4..]), before the entry's fields:
 * `certificate` is the client certificate's thumbprint and its DER, or an empty DER when the
 * hash already holds it; then the group's name and the templated stream's name, where there are.
 */
export function streamAppendArguments(stream: StreamAppend, certificate: { thumbprint: string; der: Uint8Array | "" }): Array<string | Buffer> {
  const der = certificate.der === "" ? "" : Buffer.from(certificate.der.buffer, certificate.der.byteOffset, certificate.der.byteLength);
  const args: Array<string | Buffer> = [certificate.thumbprint, der];
  if (stream.consumerGroup !== undefined) args.push(stream.consumerGroup);
  if (stream.names) args.push(stream.names.stream);
  return args;
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
