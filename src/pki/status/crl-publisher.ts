/**
 * Keeps the issuing CA's CRL current: rebuilt on every revocation (from any replica, via the
 * store's subscription) and on a timer well before nextUpdate, so it never lapses. Also holds
 * the root CA's long-lived CRL (`root-ca.crl`), because relying parties and Node's `crl`
 * option need one per CA in the chain (pitfall 2).
 *
 * Replicas agree: the CRL (number, times, DER) is stored with the revocations, and a replica
 * that finds a stored CRL for the same revocation set serves those very bytes instead of
 * signing its own. A new number is always above both the stored one and the trust ledger's
 * high-water mark, and reaches the ledger before anyone can see it, so cRLNumber never goes
 * down: not across restarts, not across replicas, not after the store lost its data. Entries
 * come from the store and the ledger together: a revocation the store forgot stays listed.
 * One file (about 300 lines): numbering, agreement between replicas and the refresh timer are
 * one invariant (cRLNumber never goes down) and are kept where they can be read together.
 */
import { PosternError } from "../../errors.js";
import { buildCrl, crlDerToPem, crlEntriesDigest, CrlEntryCache, type SigningIssuer } from "./crl.js";
import type { PkiStore, RevokedEntry, StoredCrl } from "../store/index.js";

/** One published CRL and the facts operators and metrics need about it. */
export interface PublishedCrl {
  der: Uint8Array<ArrayBuffer>;
  pem: string;
  crlNumber: bigint;
  thisUpdateMs: number;
  nextUpdateMs: number;
  /** Entries listed, when this replica built or checked it (undefined for one only fetched). */
  entryCount: number | undefined;
}

/** Timer port so tests can drive the schedule; the default unrefs its timers. */
export interface CrlTimers {
  set(fn: () => void, delayMs: number): unknown;
  clear(handle: unknown): void;
}

/** What the publisher needs from the trust ledger (`trust-ledger.ts`). */
export interface CrlLedger {
  /** Revocations the ledger holds: listed even when the store lost them. */
  revocations(): Iterable<RevokedEntry>;
  /** The highest cRLNumber ever recorded. */
  highWater(): bigint;
  /** Records `n` durably before a CRL with it is published. */
  recordCrlNumber(n: bigint): Promise<void>;
}

export interface CrlPublisherOptions {
  issuer: SigningIssuer;
  store: Pick<PkiStore, "listRevoked" | "getCrlState" | "putCrlState" | "subscribeRevocations">;
  /** Without one, only the store's own numbers and entries count (tests, tools). */
  ledger?: CrlLedger;
  /** PEM of the root CA's CRL (the stored `root-ca.crl`), published after the issuing CA's. */
  rootCrlPem?: string;
  /** CRL validity (nextUpdate - thisUpdate). Default 24 h. */
  validityMs?: number;
  /** Scheduled rebuild interval. Default a quarter of the validity (6 h), capped at half. */
  refreshMs?: number;
  /** Delay before retrying a failed rebuild. Default 60 s. */
  retryMs?: number;
  /** thisUpdate is backdated this much for relying parties with slow clocks. Default 60 s. */
  backdateMs?: number;
  /** `latest()` looks for a newer stored CRL at most this often. Default 1 s. */
  syncIntervalMs?: number;
  now?: () => number;
  timers?: CrlTimers;
  onPublished?: (crl: PublishedCrl) => void;
  /** Called when a rebuild fails; the previous CRL stays published and a retry is scheduled. */
  onError?: (err: unknown) => void;
}

const DAY_MS = 24 * 3600 * 1000;
/** setTimeout fires at once for delays above 2^31-1 ms; never ask for more. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Rounds for a replica that keeps losing the race to store a CRL before it serves its own. */
const MAX_ROUNDS = 3;

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

const seconds = (ms: number) => Math.floor(ms / 1000) * 1000;

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
  #lastSyncMs = Number.NEGATIVE_INFINITY;
  #syncing: Promise<void> | undefined;

  constructor(opts: CrlPublisherOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#timers = opts.timers ?? defaultTimers;
    this.#validityMs = opts.validityMs ?? DAY_MS;
    if (!(this.#validityMs > 0)) throw new RangeError("validityMs must be positive");
    if (opts.rootCrlPem !== undefined && !opts.rootCrlPem.includes("-----BEGIN X509 CRL-----")) {
      throw new RangeError("rootCrlPem must be a PEM with the X509 CRL label");
    }
  }

  /** Subscribes to revocations, then builds (or adopts) the first CRL and schedules the next. */
  async start(): Promise<PublishedCrl> {
    if (this.#unsubscribe || this.#stopped) throw new PosternError("internal", "CrlPublisher already started");
    // Subscribe first so a revocation landing during the first build is not missed.
    this.#unsubscribe = await this.#opts.store.subscribeRevocations(() => {
      this.rebuild().catch(() => undefined); // reported through onError
    });
    return this.rebuild();
  }

  /** Makes the CRL match the current revocations: adopts a stored one for them, or signs one. */
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
      let built: PublishedCrl | undefined;
      for (let round = 0; round < MAX_ROUNDS && !built; round++) built = await this.#round(round === MAX_ROUNDS - 1);
      this.#schedule(this.#dueInMs(this.#current!));
      return this.#current!;
    } catch (err) {
      this.#opts.onError?.(err);
      this.#schedule(this.#opts.retryMs ?? 60_000);
      throw err;
    }
  }

  /** One attempt; undefined when another replica stored a CRL for another set meanwhile. */
  async #round(last: boolean): Promise<PublishedCrl | undefined> {
    const entries = this.#entries(await this.#opts.store.listRevoked());
    const digest = crlEntriesDigest(entries);
    const stored = await this.#opts.store.getCrlState();
    if (this.#usable(stored, digest)) return this.#adopt(stored, entries.length);
    const now = this.#now();
    const crlNumber = [stored?.crlNumber ?? 0n, this.#opts.ledger?.highWater() ?? 0n, this.#current?.crlNumber ?? 0n].reduce((a, b) => (a > b ? a : b)) + 1n;
    // A CRL must not claim to be older than a revocation it lists.
    const latestRevocation = entries.reduce((max, e) => Math.max(max, e.revokedAtMs), 0);
    const thisUpdateMs = Math.max(seconds(now - (this.#opts.backdateMs ?? 60_000)), seconds(latestRevocation));
    const nextUpdateMs = thisUpdateMs + this.#validityMs;
    const der = buildCrl({ issuer: this.#opts.issuer, entries: this.#cache.encodeAll(entries), crlNumber, thisUpdateMs, nextUpdateMs }).der;
    await this.#opts.ledger?.recordCrlNumber(crlNumber);
    const winner = await this.#opts.store.putCrlState({ crlNumber, thisUpdateMs, nextUpdateMs, digest, der });
    if (winner.crlNumber === crlNumber && winner.der && Buffer.from(winner.der).equals(der)) {
      return this.#publish({ der, pem: crlDerToPem(der), crlNumber, thisUpdateMs, nextUpdateMs, entryCount: entries.length });
    }
    if (this.#usable(winner, digest)) return this.#adopt(winner, entries.length);
    // Another replica stored a CRL for other revocations: go again, or serve ours if it wins no race.
    if (!last) return undefined;
    return this.#publish({ der, pem: crlDerToPem(der), crlNumber, thisUpdateMs, nextUpdateMs, entryCount: entries.length });
  }

  /** Store revocations, plus the ledger's for serials the store does not list (it wins ties). */
  #entries(fromStore: readonly RevokedEntry[]): RevokedEntry[] {
    const bySerial = new Map(fromStore.map((e) => [e.serial.toLowerCase(), e]));
    for (const e of this.#opts.ledger?.revocations() ?? []) if (!bySerial.has(e.serial.toLowerCase())) bySerial.set(e.serial.toLowerCase(), e);
    return [...bySerial.values()].sort((a, b) => (a.serial < b.serial ? -1 : a.serial > b.serial ? 1 : 0));
  }

  /** A stored CRL this replica may serve as is: same revocations, not due, not below the ledger. */
  #usable(stored: StoredCrl | undefined, digest: string): stored is StoredCrl & { der: Uint8Array } {
    return (
      stored !== undefined &&
      stored.der !== undefined &&
      stored.digest === digest &&
      stored.crlNumber >= (this.#opts.ledger?.highWater() ?? 0n) &&
      this.#now() < stored.thisUpdateMs + this.#refreshMs()
    );
  }

  #adopt(stored: StoredCrl & { der: Uint8Array }, entryCount: number | undefined): PublishedCrl {
    const der = new Uint8Array(stored.der);
    return this.#publish({ der, pem: crlDerToPem(der), crlNumber: stored.crlNumber, thisUpdateMs: stored.thisUpdateMs, nextUpdateMs: stored.nextUpdateMs, entryCount });
  }

  /** Serves `crl` unless this replica already serves a higher number (never goes back). */
  #publish(crl: PublishedCrl): PublishedCrl {
    const current = this.#current;
    if (current && current.crlNumber > crl.crlNumber) return current;
    if (current && current.crlNumber === crl.crlNumber) {
      if (current.entryCount === undefined && crl.entryCount !== undefined) current.entryCount = crl.entryCount;
      return current;
    }
    this.#current = crl;
    this.#opts.onPublished?.(crl);
    return crl;
  }

  #refreshMs(): number {
    return Math.min(this.#opts.refreshMs ?? this.#validityMs / 4, this.#validityMs / 2);
  }

  #dueInMs(crl: PublishedCrl): number {
    return Math.max(0, crl.thisUpdateMs + this.#refreshMs() - this.#now());
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    if (this.#timer !== undefined) this.#timers.clear(this.#timer);
    this.#timer = this.#timers.set(() => {
      this.#timer = undefined;
      this.rebuild().catch(() => undefined);
    }, Math.max(0, Math.min(delayMs, MAX_TIMER_MS)));
  }

  /** The CRL this replica serves, if one was built. */
  get current(): PublishedCrl | undefined {
    return this.#current;
  }

  /**
   * The CRL to serve now: the current one, or a newer one another replica stored (looked up
   * at most once per `syncIntervalMs`), so a client moving between replicas never sees the
   * number go down. A store that does not answer leaves the current one in place.
   */
  async latest(): Promise<PublishedCrl | undefined> {
    if (this.#now() - this.#lastSyncMs >= (this.#opts.syncIntervalMs ?? 1000)) {
      this.#lastSyncMs = this.#now();
      this.#syncing ??= this.#sync().finally(() => (this.#syncing = undefined));
    }
    await this.#syncing;
    return this.#current;
  }

  async #sync(): Promise<void> {
    try {
      const peek = await this.#opts.store.getCrlState({ withDer: false });
      if (!peek || peek.crlNumber <= (this.#current?.crlNumber ?? 0n)) return;
      const stored = await this.#opts.store.getCrlState();
      if (stored?.der && stored.crlNumber > (this.#current?.crlNumber ?? 0n) && stored.nextUpdateMs > this.#now()) this.#adopt({ ...stored, der: stored.der }, undefined);
      else void this.rebuild().catch(() => undefined);
    } catch {
      // Serve what we have.
    }
  }

  /** nextUpdate of the current CRL (for the `seconds until CRL nextUpdate` metric). */
  get nextUpdateMs(): number | undefined {
    return this.#current?.nextUpdateMs;
  }

  /** The root CA's CRL, as configured. */
  get rootCrl(): { pem: string; der: Uint8Array } | undefined {
    const pem = this.#opts.rootCrlPem;
    if (!pem) return undefined;
    const body = pem.replace(/-----(BEGIN|END) X509 CRL-----/g, "").replace(/\s+/g, "");
    return { pem, der: new Uint8Array(Buffer.from(body, "base64")) };
  }

  /** The issuing CA's CRL then the root's, in one PEM: what `/crl.pem` serves. */
  bundlePem(crl: PublishedCrl): string {
    return crl.pem + (this.#opts.rootCrlPem ?? "");
  }

  /**
   * CRLs for `tls.createSecureContext({ crl })`: the issuing CA's and the root's. Throws
   * `internal` before the first build: serving TLS without a CRL would fail open.
   */
  crlPemsForTls(): string[] {
    if (!this.#current) throw new PosternError("internal", "CRL not built yet");
    return [this.#current.pem, ...(this.#opts.rootCrlPem ? [this.#opts.rootCrlPem] : [])];
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
