/**
 * Retries and dead letters for consumers of Postern's Redis Streams.
 *
 * The pattern (`readWithRetries`), for one consumer of group `group`:
 *
 * ```ts
 * for (;;) {
 *   // 1. Take over entries another consumer left pending for too long (it crashed, or failed).
 *   const stale = await claimStale({ redis, stream, group, consumer, minIdleMs: 60_000, count: 16 });
 *   // 2. Then new entries.
 *   const fresh = await readNew({ redis, stream, group, consumer, count: 16, blockMs: 5_000 });
 *   for (const { id, fields } of [...stale.entries, ...fresh]) {
 *     const verdict = verifyStreamEntry(fields, { keys });
 *     if (!verdict.ok) {
 *       // Forged or changed: retrying cannot help.
 *       await deadLetter({ redis, stream, group, id, fields, reason: verdict.code });
 *       continue;
 *     }
 *     try {
 *       await handle(verdict);
 *       await redis.xack(stream, group, id);
 *     } catch (error) {
 *       // Left pending: claimStale hands it out again after minIdleMs, counting deliveries.
 *       if ((await deliveryCount({ redis, stream, group, id })) >= 5) {
 *         await deadLetter({ redis, stream, group, id, fields, reason: "handler-failed" });
 *       }
 *     }
 *   }
 * }
 * ```
 *
 * A dead-letter entry holds the original entry's fields unchanged plus DEAD_LETTER_FIELDS. It
 * is not a gateway entry any more: `verifyStreamEntry` refuses it (unexpected fields). To look
 * at the original, drop those four fields (`originalFields`) and verify that; the gateway's
 * signature then still proves what the client sent.
 */
import type { Cluster, Redis } from "ioredis";
import { PosternError } from "../errors.js";
import { fieldsOf } from "./redis-entries.js";
import type { StreamEntryFields } from "./verify-entry.js";

export type ConsumerRedis = Redis | Cluster;

/** The fields `deadLetter` adds to the original entry's. */
export const DEAD_LETTER_FIELDS = ["dead-letter-reason", "dead-letter-from", "dead-letter-id", "delivery-count"] as const;

export interface StreamEntry {
  id: string;
  fields: StreamEntryFields;
}

/**
 * Moves entries pending longer than `minIdleMs` to `consumer` (XAUTOCLAIM), each delivery
 * counting towards its delivery count. Call again from `nextStart` until it is "0-0".
 * `deletedIds`: pending entries that no longer exist (trimmed); Redis drops them from the PEL.
 */
export async function claimStale(options: {
  redis: ConsumerRedis;
  stream: string;
  group: string;
  consumer: string;
  minIdleMs: number;
  count: number;
  start?: string;
}): Promise<{ nextStart: string; entries: StreamEntry[]; deletedIds: string[] }> {
  const { redis, stream, group, consumer, minIdleMs, count } = options;
  const reply = (await redis.callBuffer("XAUTOCLAIM", stream, group, consumer, minIdleMs, options.start ?? "0-0", "COUNT", count)) as [
    Buffer,
    Array<[Buffer, Buffer[]] | null>,
    Buffer[]?,
  ];
  const entries = reply[1].flatMap((entry) => (entry ? [{ id: entry[0].toString(), fields: fieldsOf(entry[1]) }] : []));
  return { nextStart: reply[0].toString(), entries, deletedIds: (reply[2] ?? []).map(String) };
}

/** Entries never delivered to `group` before (XREADGROUP ... `>`), waiting up to `blockMs` (0 = no wait). */
export async function readNew(options: {
  redis: ConsumerRedis;
  stream: string;
  group: string;
  consumer: string;
  count: number;
  blockMs?: number;
}): Promise<StreamEntry[]> {
  const { redis, stream, group, consumer, count } = options;
  const block = options.blockMs ? ["BLOCK", options.blockMs] : [];
  const reply = (await redis.callBuffer("XREADGROUP", "GROUP", group, consumer, "COUNT", count, ...block, "STREAMS", stream, ">")) as
    | Array<[Buffer, Array<[Buffer, Buffer[]]>]>
    | null;
  return (reply?.[0]?.[1] ?? []).map(([id, flat]) => ({ id: id.toString(), fields: fieldsOf(flat) }));
}

/** How often `id` was delivered to the group (XPENDING); 0 when it is not pending. */
export async function deliveryCount(options: { redis: ConsumerRedis; stream: string; group: string; id: string }): Promise<number> {
  const { redis, stream, group, id } = options;
  const pending = (await redis.xpending(stream, group, id, id, 1)) as Array<[string, string, number, number]>;
  return pending[0]?.[3] ?? 0;
}

/** XACK, then XADD to the dead-letter stream only if this XACK took the entry off the PEL. */
const DEAD_LETTER_SCRIPT = `
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return false end
if ARGV[3] == '1' then redis.call('XDEL', KEYS[1], ARGV[2]) end
local args = {KEYS[2]}
if tonumber(ARGV[4]) > 0 then args = {KEYS[2], 'MAXLEN', '~', ARGV[4]} end
args[#args + 1] = '*'
for i = 5, #ARGV do args[#args + 1] = ARGV[i] end
return redis.call('XADD', unpack(args))
`;

/**
 * Gives up on a pending entry: acknowledges it in `group` and appends its fields, plus
 * DEAD_LETTER_FIELDS, to `deadLetterStream` (default `<stream>:dead`, the same hash slot) in
 * one script. Only the consumer whose XACK took effect writes the dead letter, so two
 * consumers giving up on one entry leave one dead letter.
 * @returns the dead-letter entry id, or undefined when the entry was no longer pending.
 * @throws PosternError bad-request when the stream has a `{hash tag}` the dead-letter stream lacks.
 */
export async function deadLetter(options: {
  redis: ConsumerRedis;
  stream: string;
  group: string;
  id: string;
  fields: StreamEntryFields;
  reason: string;
  deadLetterStream?: string;
  /** Default: read with XPENDING just before. */
  deliveryCount?: number;
  /** Also XDEL the original, freeing room under a `maxBacklog` limit. Default false. */
  deleteOriginal?: boolean;
  /** Approximate MAXLEN of the dead-letter stream; 0 (default) = no trimming. */
  maxLength?: number;
}): Promise<string | undefined> {
  const { redis, stream, group, id, fields, reason } = options;
  const target = options.deadLetterStream ?? `${stream}:dead`;
  const tag = hashTag(stream);
  if (tag !== undefined && hashTag(target) !== tag) {
    throw new PosternError("bad-request", "the dead-letter stream must share the stream's {hash tag}");
  }
  const count = options.deliveryCount ?? (await deliveryCount({ redis, stream, group, id }));
  const added: Array<string | Buffer> = [reason, stream, id, String(count)];
  const extra = DEAD_LETTER_FIELDS.flatMap((name, i) => [name, added[i]!]);
  const original = Object.entries(fields).filter(([name]) => !(DEAD_LETTER_FIELDS as readonly string[]).includes(name));
  const args = [group, id, options.deleteOriginal ? "1" : "0", options.maxLength ?? 0, ...original.flat(), ...extra];
  const entry = (await redis.eval(DEAD_LETTER_SCRIPT, 2, stream, target, ...args)) as string | null;
  return entry ?? undefined;
}

/** A dead-letter entry's fields without DEAD_LETTER_FIELDS: the gateway entry as it was. */
export function originalFields(fields: StreamEntryFields): StreamEntryFields {
  return Object.fromEntries(Object.entries(fields).filter(([name]) => !(DEAD_LETTER_FIELDS as readonly string[]).includes(name)));
}

/** The part of a key Redis Cluster hashes when it has one: the first non-empty `{...}`. */
function hashTag(key: string): string | undefined {
  const open = key.indexOf("{");
  const close = open < 0 ? -1 : key.indexOf("}", open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : undefined;
}
