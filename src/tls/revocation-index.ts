/**
 * Revoked serials, consulted on every new connection. Kept in memory and fed by the PKI store
 * (and, with Redis, by every replica's revocations), so a revocation takes effect on the next
 * handshake without a reload.
 */
export class RevocationIndex {
  private readonly serials = new Set<string>();

  /** Serials are lowercase hex exactly as encoded in the certificate. */
  add(serial: string): void {
    this.serials.add(normalise(serial));
  }

  has(serial: string): boolean {
    return this.serials.has(normalise(serial));
  }

  get size(): number {
    return this.serials.size;
  }
}

function normalise(serial: string): string {
  return serial.toLowerCase().replace(/^(00)+(?=[0-9a-f])/, "");
}
