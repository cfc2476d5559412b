import { createHash } from "node:crypto";
import { PosternError } from "../errors.js";

/** Active Content-Digest algorithms (RFC 9530 §5 registry, status "Active"). */
export type DigestAlgorithm = "sha-256" | "sha-512";

/** node:crypto name of each active algorithm. */
export const DIGEST_HASHES: Readonly<Record<DigestAlgorithm, string>> = Object.freeze({
  "sha-256": "sha256",
  "sha-512": "sha512",
});

/**
 * The Content-Digest field value for `body` (RFC 9530 §2), e.g. 'sha-256=:X48E9q...=:'.
 * Default sha-256; only active algorithms can be produced.
 */
export function createContentDigest(body: Uint8Array, alg: DigestAlgorithm = "sha-256"): string {
  const hash = DIGEST_HASHES[alg];
  if (hash === undefined) throw new PosternError("internal", "unsupported digest algorithm");
  return `${alg}=:${createHash(hash).update(body).digest("base64")}:`;
}
