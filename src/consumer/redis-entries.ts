import { Redis } from "ioredis";
import type { StreamEntryFields } from "./verify-entry.js";

/** Reads one stream entry by id, with binary-safe values; undefined when there is none. */
export async function readStreamEntry(redisUrl: string, stream: string, id: string): Promise<StreamEntryFields | undefined> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const entries = await redis.xrangeBuffer(stream, id, id);
    const flat = entries[0]?.[1];
    return flat ? fieldsOf(flat) : undefined;
  } finally {
    redis.disconnect();
  }
}

/** XRANGE/XREADGROUP's flat [field, value, ...] list as a record. */
export function fieldsOf(flat: ReadonlyArray<Buffer | string>): StreamEntryFields {
  const fields: Record<string, string | Buffer> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const value = flat[i + 1]!;
    fields[flat[i]!.toString()] = value;
  }
  return fields;
}
