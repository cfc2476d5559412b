import { createHash } from "node:crypto";

/** RFC 9421 `nonce` values Postern accepts: 16-128 unreserved URI characters. */
const NONCE_PATTERN = /^[A-Za-z0-9._~-]{16,128}$/;

export function isValidNonce(nonce: string): boolean {
  return NONCE_PATTERN.test(nonce);
}

/** One nonce, claimed once per client and backend until the signature would be stale anyway. */
export interface NonceClaim {
  /** The backend name; it is the Redis Cluster hash tag, so the claim and the stream share a slot. */
  backend: string;
  /** The client's certificate thumbprint. */
  client: string;
  nonce: string;
  /** The request's Content-Digest: a retry with the same digest is idempotent, other content is a replay. */
  digest: string;
  expiresAtMs: number;
}

export type ClaimResult =
  | { outcome: "claimed"; messageId: string; entryId?: string }
  | { outcome: "duplicate"; messageId: string; entryId?: string }
  | { outcome: "replayed" };

/** The store key of a claim: `<prefix>{<backend>}:nonce:<client>:<sha256(nonce)>`. */
export function nonceKey(prefix: string, claim: NonceClaim): string {
  const hash = createHash("sha256").update(claim.nonce).digest("base64url");
  return `${prefix}{${claim.backend}}:nonce:${claim.client}:${hash}`;
}

/** The Redis key of a stream backend, in the same hash slot as its nonces. */
export function streamKey(prefix: string, backend: string, stream: string): string {
  return `${prefix}{${backend}}:${stream}`;
}
