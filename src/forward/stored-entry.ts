/**
 * One line of an embedded stream file:
 * `{"id":"<ms>-<seq>","bodyEncoding":"base64","fields":{...},"claim":{...}}`.
 * `fields` is the signed stream entry (what a consumer verifies); `claim` is the nonce claim
 * the message spent, written in the same line so the message and its claim reach the disk in
 * the same write and the same fsync. It sits outside `fields`, so it is not part of what the
 * gateway signed, and a consumer can ignore it.
 */
import { parseClaimRecord, type ClaimRecord } from "../replay/index.js";

export type StoredClaim = Omit<ClaimRecord, "entryId">;

export interface StoredEntry {
  id: string;
  /** The id's time part: no earlier line of the file has a later one. */
  idMs: number;
  claim?: StoredClaim;
}

/** The line (with its "\n") for one accepted message. */
export function storedEntryLine(id: string, fields: Readonly<Record<string, string>>, claim: StoredClaim): string {
  // Key order is part of the format: `id` first and `claim` last let a scan read both from the ends of a line.
  return JSON.stringify({ id, bodyEncoding: "base64", fields, claim: { key: claim.key, digest: claim.digest, expiresAtMs: claim.expiresAtMs, messageId: claim.messageId } }) + "\n";
}

const ID_PREFIX = /^\{"id":"(\d{1,16})-(\d{1,16})"/;
const CLAIM_KEY = Buffer.from(',"claim":{');

/**
 * The id and claim of a stored line, read from its two ends without parsing the body in
 * between (a start reads many lines). A raw `,"claim":{` can only be a key: inside a JSON
 * string every `"` is escaped. Lines written before claims were stored have no claim;
 * anything else unreadable is undefined.
 */
export function readStoredEntry(line: Buffer): StoredEntry | undefined {
  const id = ID_PREFIX.exec(line.toString("latin1", 0, 64));
  if (!id) return undefined;
  const entry: StoredEntry = { id: `${id[1]}-${id[2]}`, idMs: Number(id[1]) };
  const at = line.lastIndexOf(CLAIM_KEY);
  if (at === -1 || line[line.length - 1] !== 0x7d) return entry;
  try {
    const record = parseClaimRecord(JSON.parse(line.toString("utf8", at + CLAIM_KEY.length - 1, line.length - 1)));
    if (record) entry.claim = record;
  } catch {
    // Not a claim after all: the entry stands without one.
  }
  return entry;
}
