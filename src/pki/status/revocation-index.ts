import { canonicalSerial } from "../index.js";

/**
 * Revoked serials, consulted on every new connection. Kept in memory and fed by the PKI store
 * (and, with Redis, by every replica's revocations), so a revocation takes effect on the next
 * handshake without a reload.
 */
export class RevocationIndex {
  private readonly serials = new Set<string>();
  private readonly listeners: Array<(serial: string) => void> = [];

  /** Serials in any hex form node or openssl prints; compared in their canonical DER form. */
  add(serial: string): void {
    const canonical = canonicalSerial(serial);
    if (this.serials.has(canonical)) return;
    this.serials.add(canonical);
    for (const listener of this.listeners) listener(canonical);
  }

  /** Called with each serial newly added (in canonical form), whatever its source: cluster workers follow the primary's index this way. */
  onAdded(listener: (serial: string) => void): void {
    this.listeners.push(listener);
  }

  /** Every revoked serial, canonical. */
  list(): string[] {
    return [...this.serials];
  }

  has(serial: string): boolean {
    return this.serials.has(canonicalSerial(serial));
  }

  get size(): number {
    return this.serials.size;
  }
}
