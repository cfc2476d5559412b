/**
 * Counts open connections by a key (client address, identity) and in total, and refuses one
 * past either limit, so no single address or identity can hold the descriptors every other
 * client needs. A limit of 0 means none.
 */
export class ConnectionCaps {
  private readonly open = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly maxPerKey: number,
    private readonly maxTotal: number,
  ) {}

  /** Counts a connection for `key`; returns its release (call once, at close), or which limit refused it. */
  tryOpen(key: string): (() => void) | "key_limit" | "total_limit" {
    const current = this.open.get(key) ?? 0;
    if (this.maxTotal > 0 && this.total >= this.maxTotal) return "total_limit";
    if (this.maxPerKey > 0 && current >= this.maxPerKey) return "key_limit";
    this.open.set(key, current + 1);
    this.total += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total -= 1;
      const left = (this.open.get(key) ?? 1) - 1;
      if (left > 0) this.open.set(key, left);
      else this.open.delete(key);
    };
  }

  get size(): number {
    return this.total;
  }
}
