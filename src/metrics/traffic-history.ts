/**
 * The last hour of data-plane outcomes in one-minute buckets, kept in memory from the same
 * calls that feed the Prometheus counters, for the console's charts. Bounded: 60 buckets and,
 * in each, one count per outcome code (a closed set: "accepted" and the error table's codes).
 */
export interface TrafficMinute {
  /** Start of the minute, ms since epoch. */
  atMs: number;
  /** Requests per outcome ("accepted" or an error code). */
  outcomes: Record<string, number>;
}

const MINUTE_MS = 60_000;
const MINUTES = 60;

export class TrafficHistory {
  readonly #buckets = new Map<number, Map<string, number>>();

  constructor(private readonly now: () => number = Date.now) {}

  record(outcome: string): void {
    const minute = Math.floor(this.now() / MINUTE_MS);
    let bucket = this.#buckets.get(minute);
    if (!bucket) {
      bucket = new Map();
      this.#buckets.set(minute, bucket);
      for (const key of this.#buckets.keys()) if (key <= minute - MINUTES) this.#buckets.delete(key);
    }
    bucket.set(outcome, (bucket.get(outcome) ?? 0) + 1);
  }

  /** The last 60 minutes, oldest first, the current (partial) minute last; empty minutes included. */
  lastHour(): TrafficMinute[] {
    const current = Math.floor(this.now() / MINUTE_MS);
    const minutes: TrafficMinute[] = [];
    for (let m = current - MINUTES + 1; m <= current; m++) {
      minutes.push({ atMs: m * MINUTE_MS, outcomes: Object.fromEntries(this.#buckets.get(m) ?? []) });
    }
    return minutes;
  }
}
