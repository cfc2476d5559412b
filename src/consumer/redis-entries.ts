import { createHash } from "node:crypto";
import { Redis } from "ioredis";
import { clientCertificatesKey } from "../forward/index.js";
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

/**
 * The client certificate (DER) a Redis stream entry names by its `client-cert-sha256`
 * (`clientCertSha256` of a verified entry): the backend keeps each once, in
 * `<keyPrefix>{<backend>}:meta:client-certs`. Undefined when Redis does not hold it (it lost
 * its data) or the bytes it holds do not hash to the thumbprint.
 */
export async function readClientCertificate(
  redis: { hgetBuffer(key: string, field: string): Promise<Buffer | null> },
  keyPrefix: string,
  backend: string,
  clientCertSha256: string,
): Promise<Buffer | undefined> {
  const der = await redis.hgetBuffer(clientCertificatesKey(keyPrefix, backend), clientCertSha256);
  if (der === null) return undefined;
  return createHash("sha256").update(der).digest("base64url") === clientCertSha256 ? der : undefined;
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
