import { createHash, timingSafeEqual } from "node:crypto";
import { isInnerList, parseDictionary, type Dictionary } from "structured-headers";
import type { ErrorCode } from "../errors.js";
import { DIGEST_HASHES, type DigestAlgorithm } from "./create-content-digest.js";
import { repeatedDictionaryKey, isFieldText, trimOws } from "./lib/index.js";

/** Cap on the combined Content-Digest value (two SHA-512 digests need under 200). */
export const MAX_CONTENT_DIGEST_CHARS = 4096;

export type ContentDigestResult =
  | { ok: true; algorithms: DigestAlgorithm[] }
  | { ok: false; code: ErrorCode; detail: string };

const ACTIVE = Object.keys(DIGEST_HASHES) as DigestAlgorithm[];

/**
 * Check a Content-Digest field (RFC 9530) against `body`. `fieldValues` holds each header
 * line. Every active algorithm present (sha-256, sha-512) must match; deprecated or unknown
 * ones (md5, sha, unixsum, unixcksum, adler, crc32c, ...) are ignored, so a field with no
 * active algorithm is "digest-missing", as is an absent field. Unparseable, oversized or
 * non-ASCII fields and a digest that is not a Byte Sequence are "bad-request"; a wrong
 * length or value is "digest-mismatch". Never throws.
 */
export function verifyContentDigest(fieldValues: readonly string[], body: Uint8Array): ContentDigestResult {
  if (fieldValues.length === 0) return { ok: false, code: "digest-missing", detail: "Content-Digest is absent" };
  let total = 0;
  for (const line of fieldValues) {
    total += line.length + 2;
    if (total > MAX_CONTENT_DIGEST_CHARS) return { ok: false, code: "bad-request", detail: "Content-Digest is too long" };
    if (!isFieldText(line)) {
      return { ok: false, code: "bad-request", detail: "Content-Digest holds non-ASCII or control characters" };
    }
  }
  const value = fieldValues.map(trimOws).join(", ");
  // The parser keeps the last of two same-named members: "every digest must match" would then
  // check only one of them.
  const repeated = repeatedDictionaryKey(value);
  if (repeated !== undefined) return { ok: false, code: "bad-request", detail: "Content-Digest names an algorithm more than once" };
  let dictionary: Dictionary;
  try {
    dictionary = parseDictionary(value);
  } catch {
    return { ok: false, code: "bad-request", detail: "Content-Digest is not a valid Dictionary" };
  }
  const algorithms: DigestAlgorithm[] = [];
  for (const alg of ACTIVE) {
    const member = dictionary.get(alg);
    if (member === undefined) continue;
    if (isInnerList(member) || !(member[0] instanceof ArrayBuffer)) {
      return { ok: false, code: "bad-request", detail: `Content-Digest ${alg} is not a Byte Sequence` };
    }
    const expected = createHash(DIGEST_HASHES[alg]).update(body).digest();
    const received = new Uint8Array(member[0]);
    if (received.length !== expected.length || !timingSafeEqual(received, expected)) {
      return { ok: false, code: "digest-mismatch", detail: `Content-Digest ${alg} does not match the body` };
    }
    algorithms.push(alg);
  }
  if (algorithms.length === 0) {
    return { ok: false, code: "digest-missing", detail: "Content-Digest has no supported algorithm" };
  }
  return { ok: true, algorithms };
}
