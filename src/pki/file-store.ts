/**
 * The embedded PKI store for one process: an append-only JSON-lines journal (fsync before any
 * call resolves) replayed into memory at open, compacted by atomic rename when it grows.
 * Mutations are applied in memory synchronously, which makes token consumption first-wins
 * within the process; durability then follows through a group-committed append.
 */
import { join } from "node:path";
import { PosternError } from "../errors.js";
import { DurableAppender, writeFileAtomic } from "./atomic-file.js";
import {
  checkCertificateRecord, checkTokenRecord, conflictUnlessSame, copyRecord, decodeCursor,
  encodeCursor, isRevocationReason, matchesFilter, normalizeSerial, pageLimit,
} from "./store-common.js";
import { replayJournal } from "./store-journal.js";
import { acquireStoreLock } from "./store-lock.js";
import type {
  CertificateFilter, CertificatePage, CertificateRecord, EnrollmentTokenRecord, PkiStore,
  RevocationReason, RevokedEntry,
} from "./store.js";

type JournalOp =
  | { op: "cert"; rec: CertificateRecord }
  | { op: "revoke"; serial: string; reason: RevocationReason; atMs: number }
  | { op: "token"; rec: EnrollmentTokenRecord }
  | { op: "consume"; tokenHash: string }
  | { op: "crl"; n: string };

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
  readonly #certs = new Map<string, CertificateRecord>();
  readonly #revoked = new Map<string, RevokedEntry>();
  readonly #tokens = new Map<string, EnrollmentTokenRecord>();
  readonly #listeners = new Set<(entry: RevokedEntry) => void>();
  #crlNumber = 0n;
  #sorted: string[] | undefined;
  #lines = 0;
  #appender!: DurableAppender;
  #release!: () => Promise<void>;
  #lastWrite: Promise<void> = Promise.resolve();
  #held: HeldWrite[] | undefined;
  #compaction: Promise<void> | undefined;
  #failed: unknown;
  #closed = false;

  private constructor(dir: string, opts: FileStoreOptions) {
    this.#path = join(dir, JOURNAL);
    this.#now = opts.now ?? Date.now;
    this.#compactMinLines = opts.compactMinLines ?? 10_000;
  }

  /** Opens (or creates) the store in `dir`, replaying the journal; tolerates a torn last line. */
  static async open(dir: string, opts: FileStoreOptions = {}): Promise<FileStore> {
    const store = new FileStore(dir, opts);
    store.#release = await acquireStoreLock(join(dir, LOCK));
    try {
      const replay = await replayJournal(store.#path, (op) => store.#apply(op as JournalOp, true));
      store.#lines = replay.lines;
      store.#appender = await DurableAppender.open(store.#path);
    } catch (err) {
      await store.#release();
      throw err;
    }
    return store;
  }

  #apply(op: JournalOp, replaying = false): void {
    switch (op.op) {
      case "cert": {
        const rec = replaying ? checkCertificateRecord(op.rec) : op.rec;
        if (this.#certs.has(rec.serial)) return; // a replayed duplicate never downgrades
        this.#certs.set(rec.serial, rec);
        this.#sorted = undefined;
        if (rec.status === "revoked") this.#revoked.set(rec.serial, revokedEntryOf(rec));
        return;
      }
      case "revoke": {
        const rec = this.#certs.get(op.serial);
        if (!rec || rec.status === "revoked") return;
        if (!isRevocationReason(op.reason) || !Number.isFinite(op.atMs)) throw new Error("bad revoke op");
        Object.assign(rec, { status: "revoked", revokedAtMs: op.atMs, revocationReason: op.reason });
        this.#revoked.set(op.serial, revokedEntryOf(rec));
        return;
      }
      case "token":
        this.#tokens.set(op.rec.tokenHash, replaying ? checkTokenRecord(op.rec) : op.rec);
        return;
      case "consume":
        this.#tokens.delete(op.tokenHash);
        return;
      case "crl": {
        const n = BigInt(op.n);
        if (n > this.#crlNumber) this.#crlNumber = n;
        return;
      }
      default:
        throw new Error(`unknown journal op ${String((op as { op?: unknown }).op)}`);
    }
  }

  /** Applies in memory now, resolves once the line is durable. */
  #commit(op: JournalOp): Promise<void> {
    this.#writable();
    this.#apply(op);
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
    if (this.#failed !== undefined) {
      throw new PosternError("internal", "PKI store failed earlier; reopen it", { cause: this.#failed });
    }
  }

  #maybeCompact(): void {
    const live = this.#certs.size + this.#tokens.size + 1;
    if (this.#compaction || this.#closed || this.#lines < Math.max(this.#compactMinLines, 2 * live)) return;
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
      const chunks = this.#snapshotChunks();
      try {
        await writeFileAtomic(this.#path, chunks);
        lineCount = chunks.lineCount;
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

  #snapshotChunks(): string[] & { lineCount: number } {
    const now = this.#now();
    const lines: string[] = [JSON.stringify({ op: "crl", n: this.#crlNumber.toString() })];
    for (const rec of this.#certs.values()) lines.push(JSON.stringify({ op: "cert", rec }));
    for (const rec of this.#tokens.values()) {
      if (rec.expiresAtMs > now) lines.push(JSON.stringify({ op: "token", rec }));
    }
    const chunks: string[] = [];
    for (let i = 0; i < lines.length; i += 5000) chunks.push(lines.slice(i, i + 5000).join("\n") + "\n");
    return Object.assign(chunks, { lineCount: lines.length });
  }

  async putCertificate(record: CertificateRecord): Promise<void> {
    const rec = checkCertificateRecord(record);
    const existing = this.#certs.get(rec.serial);
    if (existing) {
      conflictUnlessSame(existing, rec);
      return this.#lastWrite;
    }
    await this.#commit({ op: "cert", rec });
    if (rec.status === "revoked") this.#notify(revokedEntryOf(rec));
  }

  async getCertificate(serial: string): Promise<CertificateRecord | undefined> {
    const rec = this.#certs.get(normalizeSerial(serial));
    return rec && copyRecord(rec);
  }

  async listCertificates(filter: CertificateFilter): Promise<CertificatePage> {
    const limit = pageLimit(filter);
    const after = decodeCursor(filter.cursor);
    this.#sorted ??= [...this.#certs.keys()].sort();
    const sorted = this.#sorted;
    let i = after === undefined ? 0 : upperBound(sorted, after);
    const items: CertificateRecord[] = [];
    for (; i < sorted.length && items.length <= limit; i++) {
      const rec = this.#certs.get(sorted[i] ?? "");
      if (rec && matchesFilter(rec, filter)) items.push(copyRecord(rec));
    }
    // One look-ahead match decides whether a next page exists, so the last page has no cursor.
    if (items.length <= limit) return { items };
    items.length = limit;
    return { items, nextCursor: encodeCursor(items[limit - 1]?.serial ?? "") };
  }

  async revoke(serial: string, reason: RevocationReason, atMs: number): Promise<CertificateRecord | undefined> {
    const key = normalizeSerial(serial);
    if (!isRevocationReason(reason)) throw new PosternError("bad-request", "unknown revocation reason");
    if (!Number.isFinite(atMs)) throw new PosternError("bad-request", "invalid revocation time");
    const rec = this.#certs.get(key);
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
    return [...this.#revoked.values()].map((e) => ({ ...e }));
  }

  async putToken(record: EnrollmentTokenRecord): Promise<void> {
    const rec = checkTokenRecord(record);
    if (this.#tokens.has(rec.tokenHash)) throw new PosternError("conflict", "token already exists");
    await this.#commit({ op: "token", rec });
  }

  async consumeToken(tokenHash: string, nowMs: number): Promise<EnrollmentTokenRecord | undefined> {
    if (typeof tokenHash !== "string" || !SHA256_HEX.test(tokenHash)) return undefined;
    const rec = this.#tokens.get(tokenHash);
    if (!rec) return undefined;
    await this.#commit({ op: "consume", tokenHash }); // deleted in memory before this awaits
    if (!(nowMs < rec.expiresAtMs)) return undefined;
    return { ...rec, roles: [...rec.roles] };
  }

  async nextCrlNumber(): Promise<bigint> {
    const n = this.#crlNumber + 1n;
    await this.#commit({ op: "crl", n: n.toString() });
    return n;
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
    await this.#appender.close();
    await this.#release();
  }
}

function revokedEntryOf(rec: CertificateRecord): RevokedEntry {
  return { serial: rec.serial, revokedAtMs: rec.revokedAtMs ?? 0, reason: rec.revocationReason ?? "unspecified" };
}

function upperBound(sorted: readonly string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] ?? "") <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
