import { createHash } from "node:crypto";

/** RFC 9421 `nonce` values Postern accepts: 16-128 unreserved URI characters. */
const NONCE_PATTERN = /^[A-Za-z0-9._~-]{16,128}$/;

export function isValidNonce(nonce: string): boolean {
  return NONCE_PATTERN.test(nonce);
}

/**
 * One nonce, claimed once per client and backend until the signature would be stale anyway.
 * Per backend, not across backends, because a claim and its stream entry must share one Redis
 * Cluster slot; that loses nothing, since the signature covers method, authority, path and
 * query: a captured request can only ever be replayed to the same route, so the same backend.
 */
export interface NonceClaim {
  /** The backend name; it is the Redis Cluster hash tag, so the claim and the stream share a slot. */
  backend: string;
  /** The client's certificate thumbprint. */
  client: string;
  nonce: string;
  /**
   * `requestFingerprint` of the request: an exact re-send (same target, same Content-Digest) is
   * idempotent and names the original; the same nonce on anything else is a replay.
   */
  digest: string;
  expiresAtMs: number;
}

export type ClaimResult =
  | { outcome: "claimed"; messageId: string; entryId?: string }
  | { outcome: "duplicate"; messageId: string; entryId?: string }
  | { outcome: "replayed" };

/**
 * What makes two requests with one nonce "the same request": method, authority, path, query
 * and Content-Digest. With the digest alone, a nonce reused for another topic of the same
 * backend was answered "already accepted" with the other message's id, and lost.
 */
export function requestFingerprint(request: { method: string; authority: string; path: string; query: string; contentDigest: string }): string {
  return createHash("sha256")
    .update(`${request.method}\n${request.authority}\n${request.path}\n${request.query}\n${request.contentDigest}`)
    .digest("base64url");
}

/** The store key of a claim: `<prefix>{<backend>}:nonce:<client>:<sha256(nonce)>`. */
export function nonceKey(prefix: string, claim: NonceClaim): string {
  const hash = createHash("sha256").update(claim.nonce).digest("base64url");
  return `${prefix}{${claim.backend}}:nonce:${claim.client}:${hash}`;
}

/** The Redis key of a stream backend, in the same hash slot as its nonces. */
export function streamKey(prefix: string, backend: string, stream: string): string {
  return `${prefix}{${backend}}:${stream}`;
}
