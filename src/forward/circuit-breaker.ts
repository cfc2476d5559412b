/**
 * A circuit breaker for one backend: pure state, no I/O, clock injected.
 *
 * closed -> open after `failureThreshold` consecutive failures; open rejects everything for
 * `openSeconds`; then half-open lets exactly one trial through (every other caller is rejected
 * while it runs); the trial's success closes the breaker, its failure opens it again.
 */
export type BreakerState = "closed" | "half-open" | "open";

/** The right to make one upstream call. Only the first of its three methods counts. */
export interface BreakerPermit {
  /** The upstream answered acceptably. */
  succeed(): void;
  /** The upstream failed (unreachable, timed out, 5xx). */
  fail(): void;
  /** No call was made after all (e.g. the nonce was a replay): a half-open trial is given back. */
  release(): void;
}

export type BreakerDecision =
  | { allowed: true; permit: BreakerPermit }
  | { allowed: false; retryAfterSeconds: number };

export interface CircuitBreakerOptions {
  failureThreshold: number;
  openSeconds: number;
  /** Milliseconds since the epoch. */
  now: () => number;
  /** Called on every state change (for metrics). */
  onStateChange?: (state: BreakerState) => void;
}

/** How long a caller rejected during a half-open trial is told to wait. */
const TRIAL_BUSY_RETRY_SECONDS = 1;

export class CircuitBreaker {
  private current: BreakerState = "closed";
  private consecutiveFailures = 0;
  private openedAtMs = 0;
  private trialInFlight = false;
  /** Bumped on every transition: results of permits granted in an older state are ignored. */
  private generation = 0;

  constructor(private readonly options: CircuitBreakerOptions) {
    if (!(options.failureThreshold >= 1)) throw new RangeError("failureThreshold must be at least 1");
    if (!(options.openSeconds > 0)) throw new RangeError("openSeconds must be positive");
  }

  /** The state as of the last decision or result (open turns half-open at the next `tryAcquire`). */
  get state(): BreakerState {
    return this.current;
  }

  /** Seconds a rejected caller should wait: the remaining open time, else a short default. */
  retryAfterSeconds(): number {
    if (this.current === "open") return Math.max(0, this.openedAtMs + this.options.openSeconds * 1000 - this.options.now()) / 1000;
    return TRIAL_BUSY_RETRY_SECONDS;
  }

  /** Asks to make one call. Fail closed: while open, or while the half-open trial runs, the answer is no. */
  tryAcquire(): BreakerDecision {
    if (this.current === "open") {
      const remaining = this.retryAfterSeconds();
      if (remaining > 0) return { allowed: false, retryAfterSeconds: remaining };
      this.transition("half-open");
    }
    if (this.current === "half-open") {
      if (this.trialInFlight) return { allowed: false, retryAfterSeconds: TRIAL_BUSY_RETRY_SECONDS };
      this.trialInFlight = true;
      return { allowed: true, permit: this.permit(true) };
    }
    return { allowed: true, permit: this.permit(false) };
  }

  private permit(trial: boolean): BreakerPermit {
    const generation = this.generation;
    let settled = false;
    const settle = (outcome: "success" | "failure" | "release") => {
      if (settled) return;
      settled = true;
      if (generation !== this.generation) return;
      if (trial) this.trialInFlight = false;
      if (outcome === "release") return;
      if (outcome === "success") {
        this.consecutiveFailures = 0;
        if (trial) this.transition("closed");
        return;
      }
      this.consecutiveFailures += 1;
      if (trial || this.consecutiveFailures >= this.options.failureThreshold) this.open();
    };
    return {
      succeed: () => settle("success"),
      fail: () => settle("failure"),
      release: () => settle("release"),
    };
  }

  private open(): void {
    this.openedAtMs = this.options.now();
    this.consecutiveFailures = 0;
    this.transition("open");
  }

  private transition(state: BreakerState): void {
    this.generation += 1;
    this.current = state;
    this.options.onStateChange?.(state);
  }
}
