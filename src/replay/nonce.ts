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
   * Opaque to the guards: they only compare it.
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

/** The Redis key of a backend's set of stream names (the `maxStreams` cap), in the backend's hash slot. Stream names hold no ":", so no stream can have this key. */
export function streamNamesKey(prefix: string, backend: string): string {
  return `${prefix}{${backend}}:meta:streams`;
}

/**
 * A claim as embedded mode writes it down (beside its message, or in the nonce journal):
 * enough to hold it again after a restart. `key` is `nonceKey("", claim)`: the raw nonce is
 * never stored.
 */
export interface ClaimRecord {
  key: string;
  digest: string;
  expiresAtMs: number;
  messageId: string;
  entryId?: string;
}

export function claimRecord(claim: NonceClaim, messageId: string): ClaimRecord {
  return { key: nonceKey("", claim), digest: claim.digest, expiresAtMs: claim.expiresAtMs, messageId };
}

/** Reads a ClaimRecord written by `claimRecord`; undefined when `value` is not one. */
export function parseClaimRecord(value: unknown): ClaimRecord | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { key, digest, expiresAtMs, messageId } = value as Record<string, unknown>;
  if (typeof key !== "string" || typeof digest !== "string" || typeof messageId !== "string") return undefined;
  if (typeof expiresAtMs !== "number" || !Number.isFinite(expiresAtMs)) return undefined;
  return { key, digest, expiresAtMs, messageId };
}

/** Slack for clock steps between a write and a restart's scan. */
export const CLAIM_HORIZON_MARGIN_MS = 60_000;

/**
 * How long after a message was received its nonce claim may still be live, for the given
 * freshness policies (the global one and each route's): a signature is accepted only with
 * `created <= received + skew`, and its claim expires at `created + maxAge + skew + 1 s`. A
 * start reads stored claims back only this far.
 */
export function claimHorizonMs(policies: Iterable<{ maxAgeSeconds: number; clockSkewSeconds: number }>): number {
  let longest = 0;
  for (const p of policies) longest = Math.max(longest, (p.maxAgeSeconds + 2 * p.clockSkewSeconds + 1) * 1000);
  return longest + CLAIM_HORIZON_MARGIN_MS;
}
