/**
 * The embedded PKI store for one process: an append-only JSON-lines journal (fsync before any
 * call resolves) replayed into memory at open, compacted by atomic rename when it grows.
 * Mutations are applied in memory synchronously, which makes token consumption first-wins
 * within the process; durability then follows through a group-committed append.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { PosternError } from "../../errors.js";
import { DurableAppender, writeFileAtomic } from "../../storage/index.js";
import {
  checkCertificateRecord, checkTokenRecord, conflictUnlessSame, copyRecord, isRevocationReason,
  normalizeSerial,
} from "./common.js";
import { replayJournal } from "./journal.js";
import { acquireStoreLock } from "./lock.js";
import { revokedEntryOf, StoreMemoryIndex, type JournalOp } from "./memory-index.js";
import type {
  CertificateFilter, CertificatePage, CertificateRecord, EnrollmentTokenRecord, PkiStore,
  RevocationReason, RevokedEntry, StoreCounts, StoredCrl,
} from "./store.js";

export interface FileStoreOptions {
  /** Clock for dropping expired tokens at compaction. */
  now?: () => number;
  /** Compact once the journal has this many lines and twice the live records. Default 10,000. */
  compactMinLines?: number;
}

interface HeldWrite {
  line: string;
  resolve: () => void;
  reject: (e: unknown) => void;
}

const JOURNAL = "pki-store.jsonl";
const LOCK = "pki-store.lock";
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** File-backed `PkiStore`. Single process: a second live process gets `conflict` at open. */
export class FileStore implements PkiStore {
  readonly #path: string;
  readonly #now: () => number;
  readonly #compactMinLines: number;
  readonly #index = new StoreMemoryIndex();
  readonly #listeners = new Set<(entry: RevokedEntry) => void>();
  #lines = 0;
  #appender!: DurableAppender;
  #release!: () => Promise<void>;
  #lastWrite: Promise<void> = Promise.resolve();
  #held: HeldWrite[] | undefined;
  #compaction: Promise<void> | undefined;
  #failed: unknown;
  #closed = false;
  #readOnly = false;

  private constructor(dir: string, opts: FileStoreOptions) {
    this.#path = join(dir, JOURNAL);
    this.#now = opts.now ?? Date.now;
    this.#compactMinLines = opts.compactMinLines ?? 10_000;
  }

  /**
   * Opens (or creates, mode 0700) the store in `dir`, replaying the journal; a torn last line
   * is dropped, any other damage refuses the open with `internal`.
   */
  static async open(dir: string, opts: FileStoreOptions = {}): Promise<FileStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const store = new FileStore(dir, opts);
    store.#release = await acquireStoreLock(join(dir, LOCK));
    try {
      const replay = await replayJournal(store.#path, (op) => store.#index.apply(op as JournalOp, true));
      store.#lines = replay.lines;
      store.#appender = await DurableAppender.open(store.#path);
    } catch (err) {
      await store.#release();
      throw err;
    }
    return store;
  }

  /**
   * A read-only view of the journal as it is now, without the lock, for a backup next to a
   * running gateway: the journal is append-only and compacted by atomic rename, so what is
   * read is always a consistent prefix. Every write throws `internal`.
   */
  static async openReadOnly(dir: string, opts: FileStoreOptions = {}): Promise<FileStore> {
    const store = new FileStore(dir, opts);
    store.#readOnly = true;
    store.#release = async () => undefined;
    await replayJournal(store.#path, (op) => store.#index.apply(op as JournalOp, true), { truncate: false });
    return store;
  }

  /** Applies in memory now, resolves once the line is durable. */
  #commit(op: JournalOp): Promise<void> {
    this.#writable();
    this.#index.apply(op);
    const line = JSON.stringify(op) + "\n";
    const write = this.#held
      ? new Promise<void>((resolve, reject) => this.#held?.push({ line, resolve, reject }))
      : this.#appender.append(line);
    this.#lines++;
    this.#lastWrite = write.then(
      () => this.#maybeCompact(),
      (err: unknown) => {
        this.#failed ??= err;
        throw new PosternError("internal", "PKI store write failed", { cause: err });
      },
    );
    return this.#lastWrite;
  }

  #writable(): void {
    if (this.#closed) throw new PosternError("internal", "PKI store is closed");
    if (this.#readOnly) throw new PosternError("internal", "this PKI store view is read-only");
    if (this.#failed !== undefined) {
      throw new PosternError("internal", "PKI store failed earlier; reopen it", { cause: this.#failed });
    }
  }

  #maybeCompact(): void {
    const threshold = Math.max(this.#compactMinLines, 2 * this.#index.liveCount);
    if (this.#compaction || this.#closed || this.#lines < threshold) return;
    this.#compaction = this.#compact()
      .catch((err: unknown) => {
        this.#failed ??= err;
      })
      .finally(() => {
        this.#compaction = undefined;
      });
  }

  /** Rewrites the journal as the current state. Writes arriving meanwhile are held, then appended. */
  async #compact(): Promise<void> {
    const held: HeldWrite[] = [];
    this.#held = held;
    let included = 0;
    let lineCount = -1;
    try {
      await this.#appender.close();
      included = held.length; // applied in memory already, so the snapshot contains them
      const snapshot = this.#index.snapshot(this.#now());
      try {
        await writeFileAtomic(this.#path, snapshot.chunks);
        lineCount = snapshot.lineCount;
      } catch {
        // The rename never happened: the old journal is intact, keep appending to it.
      }
      this.#appender = await DurableAppender.open(this.#path);
    } catch (err) {
      this.#failed ??= err;
      this.#held = undefined;
      for (const h of held) h.reject(err);
      return;
    }
    this.#held = undefined;
    const compacted = lineCount >= 0;
    if (compacted) this.#lines = lineCount + held.length - included;
    held.forEach((h, i) => {
      if (compacted && i < included) h.resolve();
      else this.#appender.append(h.line).then(h.resolve, h.reject);
    });
  }

  async putCertificate(record: CertificateRecord): Promise<void> {
    const rec = checkCertificateRecord(record);
    const existing = this.#index.certs.get(rec.serial);
    if (existing) {
      conflictUnlessSame(existing, rec);
      return this.#lastWrite;
    }
    await this.#commit({ op: "cert", rec });
    if (rec.status === "revoked") this.#notify(revokedEntryOf(rec));
  }

  async getCertificate(serial: string): Promise<CertificateRecord | undefined> {
    const rec = this.#index.certs.get(normalizeSerial(serial));
    return rec && copyRecord(rec);
  }

  async listCertificates(filter: CertificateFilter): Promise<CertificatePage> {
    return this.#index.page(filter);
  }

  async revoke(serial: string, reason: RevocationReason, atMs: number): Promise<CertificateRecord | undefined> {
    const key = normalizeSerial(serial);
    if (!isRevocationReason(reason)) throw new PosternError("bad-request", "unknown revocation reason");
    if (!Number.isFinite(atMs)) throw new PosternError("bad-request", "invalid revocation time");
    const rec = this.#index.certs.get(key);
    if (!rec) return undefined;
    if (rec.status === "revoked") {
      await this.#lastWrite; // the first revoke may still be on its way to disk
      return copyRecord(rec);
    }
    await this.#commit({ op: "revoke", serial: key, reason, atMs });
    this.#notify(revokedEntryOf(rec));
    return copyRecord(rec);
  }

  async listRevoked(): Promise<RevokedEntry[]> {
    return [...this.#index.revoked.values()].map((e) => ({ ...e }));
  }

  async missingCertificates(serials: readonly string[]): Promise<string[]> {
    return serials.filter((serial) => !this.#index.certs.has(normalizeSerial(serial)));
  }

  async counts(): Promise<StoreCounts> {
    return { certificates: this.#index.certs.size, revoked: this.#index.revoked.size };
  }

  async putToken(record: EnrollmentTokenRecord): Promise<void> {
    const rec = checkTokenRecord(record);
    if (this.#index.tokens.has(rec.tokenHash)) throw new PosternError("conflict", "token already exists");
    await this.#commit({ op: "token", rec });
  }

  async peekToken(tokenHash: string, nowMs: number): Promise<EnrollmentTokenRecord | undefined> {
    if (typeof tokenHash !== "string" || !SHA256_HEX.test(tokenHash)) return undefined;
    const rec = this.#index.tokens.get(tokenHash);
    if (!rec || !(nowMs < rec.expiresAtMs)) return undefined;
    await this.#lastWrite; // a token created just now may still be on its way to disk
    return { ...rec, roles: [...rec.roles] };
  }

  async consumeToken(tokenHash: string, nowMs: number): Promise<EnrollmentTokenRecord | undefined> {
    if (typeof tokenHash !== "string" || !SHA256_HEX.test(tokenHash)) return undefined;
    const rec = this.#index.tokens.get(tokenHash);
    if (!rec) return undefined;
    await this.#commit({ op: "consume", tokenHash }); // deleted in memory before this awaits
    if (!(nowMs < rec.expiresAtMs)) return undefined;
    return { ...rec, roles: [...rec.roles] };
  }

  async failToken(tokenHash: string, maxFailures: number): Promise<number> {
    if (typeof tokenHash !== "string" || !SHA256_HEX.test(tokenHash)) return 0;
    const rec = this.#index.tokens.get(tokenHash);
    if (!rec) return 0;
    const failures = (rec.failures ?? 0) + 1;
    await this.#commit({ op: "tokfail", tokenHash, failures, max: maxFailures }); // applied in memory first
    return failures;
  }

  async listTokens(nowMs: number): Promise<EnrollmentTokenRecord[]> {
    return [...this.#index.tokens.values()].filter((r) => nowMs < r.expiresAtMs).map((r) => ({ ...r, roles: [...r.roles] }));
  }

  async getCrlState(opts: { withDer?: boolean } = {}): Promise<StoredCrl | undefined> {
    const crl = this.#index.crl;
    if (crl && crl.crlNumber === this.#index.crlNumber) {
      const { der, ...rest } = crl;
      return opts.withDer === false || der === undefined ? rest : { ...rest, der };
    }
    // Only a bare counter (older journals): a state with that number and nothing else.
    return this.#index.crlNumber > 0n ? { crlNumber: this.#index.crlNumber, thisUpdateMs: 0, nextUpdateMs: 0, digest: "" } : undefined;
  }

  async putCrlState(crl: StoredCrl): Promise<StoredCrl> {
    if (crl.crlNumber > this.#index.crlNumber) {
      await this.#commit({ op: "crlstate", n: crl.crlNumber.toString(), thisUpdateMs: crl.thisUpdateMs, nextUpdateMs: crl.nextUpdateMs, digest: crl.digest });
      if (this.#index.crl) this.#index.crl = { ...this.#index.crl, ...(crl.der ? { der: crl.der } : {}) };
    } else {
      await this.#lastWrite;
    }
    return (await this.getCrlState())!;
  }

  async subscribeRevocations(onRevoked: (entry: RevokedEntry) => void): Promise<() => Promise<void>> {
    const listener = (entry: RevokedEntry) => onRevoked(entry);
    this.#listeners.add(listener);
    return async () => {
      this.#listeners.delete(listener);
    };
  }

  #notify(entry: RevokedEntry): void {
    for (const l of this.#listeners) {
      try {
        l({ ...entry });
      } catch {
        // A subscriber's bug must not fail the revocation, which is already durable.
      }
    }
  }

  /** Waits for pending writes and compaction, then releases the file and the lock. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#lastWrite.catch(() => undefined);
    await this.#compaction;
    this.#listeners.clear();
    if (!this.#readOnly) await this.#appender.close();
    await this.#release();
  }
}
