import { canonicalSerial } from "../index.js";

/**
 * Revoked serials, consulted on every new connection. Kept in memory and fed by the PKI store
 * (and, with Redis, by every replica's revocations), so a revocation takes effect on the next
 * handshake without a reload.
 */
export class RevocationIndex {
  private readonly serials = new Set<string>();

  /** Serials in any hex form node or openssl prints; compared in their canonical DER form. */
  add(serial: string): void {
    this.serials.add(canonicalSerial(serial));
  }

  has(serial: string): boolean {
    return this.serials.has(canonicalSerial(serial));
  }

  get size(): number {
    return this.serials.size;
  }
}
