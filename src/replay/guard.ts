import type { ClaimResult, NonceClaim } from "./nonce.js";

/**
 * Claims a nonce before a message is forwarded to a backend that is not a stream (an HTTP
 * service). Implemented by the memory guard (embedded) and the Redis guard (replicas).
 */
export interface NonceGuard {
  claim(claim: NonceClaim, messageId: string): Promise<ClaimResult>;
  /**
   * Gives a claim back, only if it is still the one `messageId` made: for a forward that
   * failed before a byte was sent, so the client may retry the same signed request.
   */
  release(claim: NonceClaim, messageId: string): Promise<void>;
}
