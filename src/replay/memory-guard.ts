import { type ClaimRecord, type ClaimResult, type NonceClaim, nonceKey } from "./nonce.js";

/** Expired claims dropped per claim made: more than one, so the sweep catches up after a quiet spell. */
const SWEEP_PER_CLAIM = 8;

interface Held {
  /** Its key in `held`. */
  key: string;
  digest: string;
  messageId: string;
  entryId?: string;
  expiresAtMs: number;
  /** Set while the claim's commit runs; later claims of the same nonce wait for it. */
  pending?: Promise<void>;
}

/**
 * The embedded, single-process replay guard. A claim and its commit (the durable write of the
 * message, or of the claim itself) are one step: while the commit runs, the nonce is held; a
 * failed commit releases it, so a retry can succeed and nothing is half-accepted. What was
 * committed before a restart comes back through `seed`.
 */
export class MemoryReplayGuard {
  private readonly held = new Map<string, Held>();
  /**
   * Every claim held, in the order it was made (which is about the order claims expire, see
   * `sweep`), from `head` on. A queue of our own, because a Map is no queue: V8 leaves deleted
   * entries as holes until it rehashes, and every new iterator walks past all of them
   * (measured: 27-107 us per claim at 300,000 claims).
   */
  private queue: Held[] = [];
  private head = 0;

  constructor(private readonly now: () => number = Date.now) {}

  async claim(
    claim: NonceClaim,
    messageId: string,
    commit: () => Promise<string | undefined> = async () => undefined,
  ): Promise<ClaimResult> {
    this.sweep();
    const key = nonceKey("", claim);
    for (;;) {
      const prior = this.held.get(key);
      if (!prior || prior.expiresAtMs <= this.now()) break;
      if (prior.pending) {
        await prior.pending.catch(() => undefined);
        continue;
      }
      return prior.digest === claim.digest
        ? { outcome: "duplicate", messageId: prior.messageId, ...(prior.entryId ? { entryId: prior.entryId } : {}) }
        : { outcome: "replayed" };
    }
    const entry: Held = { key, digest: claim.digest, messageId, expiresAtMs: claim.expiresAtMs };
    let settle!: () => void;
    entry.pending = new Promise<void>((resolve) => (settle = resolve));
    this.hold(entry);
    try {
      const entryId = await commit();
      if (entryId !== undefined) entry.entryId = entryId;
      delete entry.pending;
      return { outcome: "claimed", messageId, ...(entryId ? { entryId } : {}) };
    } catch (error) {
      this.held.delete(key);
      throw error;
    } finally {
      settle();
    }
  }

  /**
   * Holds a claim again that was written down before this start. The newest record of a key
   * must come first: a key already held is left as it is, and an expired record is skipped.
   * Returns whether it was taken.
   */
  seed(record: ClaimRecord): boolean {
    if (record.expiresAtMs <= this.now() || this.held.has(record.key)) return false;
    const entry: Held = { key: record.key, digest: record.digest, messageId: record.messageId, expiresAtMs: record.expiresAtMs };
    if (record.entryId !== undefined) entry.entryId = record.entryId;
    this.hold(entry);
    return true;
  }

  async release(claim: NonceClaim, messageId: string): Promise<void> {
    const key = nonceKey("", claim);
    const held = this.held.get(key);
    if (held && held.messageId === messageId && !held.pending) this.held.delete(key);
  }

  private hold(entry: Held): void {
    this.held.set(entry.key, entry);
    this.queue.push(entry);
  }

  /**
   * Drops expired claims from the oldest end, a few per claim made, so no claim pays for a scan
   * of them all (a scan of the whole map once a second held every request up for 2-3 ms at
   * 300,000 claims). Claims are made in about the order they expire (created, which
   * is within the clock skew of now, plus the window), so the oldest wait at the front; one that
   * expires later than those behind it holds them back no longer than its own window: memory
   * stays bounded by about twice the claims of one window. A queued claim that is no longer the
   * one held for its key (released, failed, or claimed again) is only taken off the queue.
   */
  private sweep(): void {
    const now = this.now();
    const queue = this.queue;
    let budget = SWEEP_PER_CLAIM;
    while (budget > 0 && this.head < queue.length) {
      const queued = queue[this.head]!;
      if (this.held.get(queued.key) === queued) {
        if (queued.expiresAtMs > now || queued.pending) break;
        this.held.delete(queued.key);
      }
      this.head += 1;
      budget -= 1;
    }
    // Taken-off entries are cut from the array once they are half of it: amortized O(1).
    if (this.head >= 1024 && this.head * 2 >= queue.length) {
      this.queue = queue.slice(this.head);
      this.head = 0;
    }
  }

  get size(): number {
    return this.held.size;
  }
}
