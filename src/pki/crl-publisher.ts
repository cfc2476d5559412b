/**
 * Keeps the issuing CA's CRL current: rebuilt on every revocation (from any replica, via the
 * store's subscription) and on a timer well before nextUpdate, so it never lapses. Also holds
 * the root CA's long-lived CRL, built offline by `buildRootCrl`, because Node's `crl` option
 * needs one per CA in the chain (pitfall 2).
 */
import { PosternError } from "../errors.js";
import { buildCrl, CrlEntryCache, type SigningIssuer } from "./crl.js";
import type { PkiStore } from "./store.js";

/** One published CRL and the facts operators and metrics need about it. */
export interface PublishedCrl {
  der: Uint8Array<ArrayBuffer>;
  pem: string;
  crlNumber: bigint;
  thisUpdateMs: number;
  nextUpdateMs: number;
  entryCount: number;
}

/** Timer port so tests can drive the schedule; the default unrefs its timers. */
export interface CrlTimers {
  set(fn: () => void, delayMs: number): unknown;
  clear(handle: unknown): void;
}

export interface CrlPublisherOptions {
  issuer: SigningIssuer;
  store: Pick<PkiStore, "listRevoked" | "nextCrlNumber" | "subscribeRevocations">;
  /** PEM of the root CA's CRL (the stored `root-ca.crl`). */
  rootCrlPem: string;
  /** CRL validity (nextUpdate - thisUpdate). Default 24 h. */
  validityMs?: number;
  /** Scheduled rebuild interval. Default a quarter of the validity (6 h), capped at half. */
  refreshMs?: number;
  /** Delay before retrying a failed rebuild. Default 60 s. */
  retryMs?: number;
  /** thisUpdate is backdated this much for relying parties with slow clocks. Default 60 s. */
  backdateMs?: number;
  now?: () => number;
  timers?: CrlTimers;
  onPublished?: (crl: PublishedCrl) => void;
  /** Called when a rebuild fails; the previous CRL stays published and a retry is scheduled. */
  onError?: (err: unknown) => void;
}

const DAY_MS = 24 * 3600 * 1000;
/** setTimeout fires at once for delays above 2^31-1 ms; never ask for more. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const defaultTimers: CrlTimers = {
  set(fn, delayMs) {
    const t = setTimeout(fn, delayMs);
    t.unref();
    return t;
  },
  clear(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

/**
 * Publishes the issuing CA's CRL. Call `start()` once; `rebuild()` coalesces bursts (calls
 * made while a build is queued share it; a call made during a build queues one more so no
 * revocation is missed). A failed rebuild keeps the last good CRL (fail safe, not open).
 */
export class CrlPublisher {
  readonly #opts: CrlPublisherOptions;
  readonly #cache = new CrlEntryCache();
  readonly #now: () => number;
  readonly #timers: CrlTimers;
  readonly #validityMs: number;
  #current: PublishedCrl | undefined;
  #tail: Promise<unknown> = Promise.resolve();
  #queued: Promise<PublishedCrl> | undefined;
  #timer: unknown;
  #unsubscribe: (() => Promise<void>) | undefined;
  #stopped = false;

  constructor(opts: CrlPublisherOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#timers = opts.timers ?? defaultTimers;
    this.#validityMs = opts.validityMs ?? DAY_MS;
    if (!(this.#validityMs > 0)) throw new RangeError("validityMs must be positive");
    if (!opts.rootCrlPem.includes("-----BEGIN X509 CRL-----")) {
      throw new RangeError("rootCrlPem must be a PEM with the X509 CRL label");
    }
  }

  /** Subscribes to revocations, then builds the first CRL and schedules the next one. */
  async start(): Promise<PublishedCrl> {
    if (this.#unsubscribe || this.#stopped) throw new PosternError("internal", "CrlPublisher already started");
    // Subscribe first so a revocation landing during the first build is not missed.
    this.#unsubscribe = await this.#opts.store.subscribeRevocations(() => {
      this.rebuild().catch(() => undefined); // reported through onError
    });
    return this.rebuild();
  }

  /** Builds a new CRL from the store's revocations with the next cRLNumber. */
  rebuild(): Promise<PublishedCrl> {
    if (this.#queued) return this.#queued;
    const run = this.#tail
      .catch(() => undefined)
      .then(() => {
        this.#queued = undefined;
        return this.#buildOnce();
      });
    this.#queued = run;
    this.#tail = run;
    return run;
  }

  async #buildOnce(): Promise<PublishedCrl> {
    try {
      const revoked = await this.#opts.store.listRevoked();
      const crlNumber = await this.#opts.store.nextCrlNumber();
      const now = this.#now();
      const thisUpdateMs = Math.floor((now - (this.#opts.backdateMs ?? 60_000)) / 1000) * 1000;
      const nextUpdateMs = thisUpdateMs + this.#validityMs;
      const entries = this.#cache.encodeAll(revoked);
      const built = buildCrl({ issuer: this.#opts.issuer, entries, crlNumber, thisUpdateMs, nextUpdateMs });
      const published: PublishedCrl = { ...built, crlNumber, thisUpdateMs, nextUpdateMs, entryCount: entries.length };
      this.#current = published;
      this.#schedule(this.#refreshDelayMs());
      this.#opts.onPublished?.(published);
      return published;
    } catch (err) {
      this.#opts.onError?.(err);
      this.#schedule(this.#opts.retryMs ?? 60_000);
      throw err;
    }
  }

  #refreshDelayMs(): number {
    const half = this.#validityMs / 2;
    return Math.min(this.#opts.refreshMs ?? this.#validityMs / 4, half);
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    if (this.#timer !== undefined) this.#timers.clear(this.#timer);
    this.#timer = this.#timers.set(() => {
      this.#timer = undefined;
      this.rebuild().catch(() => undefined);
    }, Math.max(0, Math.min(delayMs, MAX_TIMER_MS)));
  }

  /** The CRL currently served, if one was built. */
  get current(): PublishedCrl | undefined {
    return this.#current;
  }

  /** nextUpdate of the current CRL (for the `seconds until CRL nextUpdate` metric). */
  get nextUpdateMs(): number | undefined {
    return this.#current?.nextUpdateMs;
  }

  /**
   * CRLs for `tls.createSecureContext({ crl })`: the issuing CA's and the root's. Throws
   * `internal` before the first build: serving TLS without a CRL would fail open.
   */
  crlPemsForTls(): string[] {
    if (!this.#current) throw new PosternError("internal", "CRL not built yet");
    return [this.#current.pem, this.#opts.rootCrlPem];
  }

  /** Stops the timer and the revocation subscription; the last CRL stays readable. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#timers.clear(this.#timer);
    this.#timer = undefined;
    const unsubscribe = this.#unsubscribe;
    this.#unsubscribe = undefined;
    await unsubscribe?.();
    await this.#tail.catch(() => undefined);
  }
}
