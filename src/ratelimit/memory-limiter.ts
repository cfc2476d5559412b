/** A token bucket's settings: `ratePerSecond` tokens refill each second, up to `burst`. */
export interface BucketLimit {
  ratePerSecond: number;
  burst: number;
}

export interface TakeResult {
  allowed: boolean;
  /** When refused: milliseconds until one token is back. */
  retryAfterMs: number;
}

/** Shared by every limiter: takes one token from `limit`, or says when to come back. */
export interface RateLimiter {
  take(key: string, limit: BucketLimit): Promise<TakeResult>;
  /** Tokens in the bucket now, without taking one (for `postern explain`). */
  peek(key: string, limit: BucketLimit): Promise<number>;
}

interface Bucket {
  tokens: number;
  atMs: number;
}

/**
 * In-process token buckets (the embedded mode's rate limits, and every instance's handshake
 * limit per source address). Idle buckets are dropped once they would be full again.
 */
export class MemoryRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweepMs = 0;

  constructor(private readonly now: () => number = Date.now) {}

  async take(key: string, limit: BucketLimit): Promise<TakeResult> {
    return this.takeNow(key, limit);
  }

  async peek(key: string, limit: BucketLimit): Promise<number> {
    const bucket = this.buckets.get(key);
    if (!bucket) return limit.burst;
    return Math.min(limit.burst, bucket.tokens + (Math.max(0, this.now() - bucket.atMs) * limit.ratePerSecond) / 1000);
  }

  /** The synchronous form, for the TLS accept path. */
  takeNow(key: string, limit: BucketLimit): TakeResult {
    const now = this.now();
    this.sweep(now, limit);
    const bucket = this.buckets.get(key) ?? { tokens: limit.burst, atMs: now };
    bucket.tokens = Math.min(limit.burst, bucket.tokens + (Math.max(0, now - bucket.atMs) * limit.ratePerSecond) / 1000);
    bucket.atMs = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true, retryAfterMs: 0 };
    }
    return { allowed: false, retryAfterMs: Math.ceil(((1 - bucket.tokens) * 1000) / limit.ratePerSecond) };
  }

  private sweep(now: number, limit: BucketLimit): void {
    const fullAfterMs = (limit.burst * 1000) / limit.ratePerSecond;
    if (now - this.lastSweepMs < Math.max(1000, fullAfterMs)) return;
    this.lastSweepMs = now;
    for (const [key, bucket] of this.buckets) if (now - bucket.atMs > fullAfterMs) this.buckets.delete(key);
  }
}
