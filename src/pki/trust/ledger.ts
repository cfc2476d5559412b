/**
 * The trust ledger: the CA's own durable record of every certificate it issued, every
 * revocation and the highest cRLNumber it published, kept on disk beside the CA (default
 * `<pki.dir>/state/ledger.jsonl`). The store (file or Redis) is where the PKI works; the
 * ledger is what the store is checked against, so an emptied or rolled-back store is detected
 * instead of believed, and a revocation is never forgotten (see ARCHITECTURE.md, "Trust
 * state"). A revocation reaches the ledger before the store (write-ahead: it is completed if
 * the store never got it), a certificate right after the store and before anyone holds it, a
 * cRLNumber before any relying party sees it.
 *
 * JSON lines; every process on the directory (replicas on a shared volume, the CLI) appends
 * under one lock file and fsyncs before the append resolves. Each process reads the lines the
 * others appended before it appends, and on `refresh()`.
 */
import { mkdir, open, readFile, rename, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { PosternError } from "../../errors.js";
import { fsyncDir, withFileMutex } from "../../storage/index.js";
import { isRevocationReason, type RevocationReason, type RevokedEntry } from "../store/index.js";

/** One ledger line. */
export type LedgerLine =
  /** First line: which CA the ledger belongs to (hex SHA-256 of the root certificate's DER). */
  | { t: "init"; pkiId: string; at: number }
  /** A certificate this CA issued (or adopted into its inventory). */
  | { t: "cert"; serial: string; fp: string }
  /** A revocation; `key` is the revoked certificate's key hash (`key-hash.ts`). */
  | { t: "revoke"; serial: string; reason: RevocationReason; atMs: number; key?: string }
  /** A cRLNumber about to be published. */
  | { t: "crl"; n: string }
  /** An operator accepted that these certificates are gone from the store (`pki restore --force`). */
  | { t: "accept"; serials: string[]; actor: string; at: number };

/** A revocation as the ledger holds it. */
export interface LedgerRevocation extends RevokedEntry {
  key?: string;
}

/** Where the ledger of a PKI lives by default. */
export const LEDGER_FILE = "ledger.jsonl";

/** The ledger's view in memory, no I/O: lines applied in order. */
export class LedgerState {
  /** serial -> fingerprint */
  readonly certificates = new Map<string, string>();
  readonly revocations = new Map<string, LedgerRevocation>();
  readonly revokedKeys = new Set<string>();
  readonly accepted = new Set<string>();
  pkiId: string | undefined;
  crlHighWater = 0n;

  /** Applies one line; throws on a line that is not one of the kinds above. */
  apply(line: LedgerLine): void {
    switch (line.t) {
      case "init":
        if (typeof line.pkiId !== "string") throw new Error("bad init line");
        this.pkiId ??= line.pkiId;
        return;
      case "cert":
        if (typeof line.serial !== "string" || typeof line.fp !== "string") throw new Error("bad cert line");
        this.certificates.set(line.serial, line.fp);
        return;
      case "revoke": {
        if (typeof line.serial !== "string" || !isRevocationReason(line.reason) || !Number.isFinite(line.atMs)) throw new Error("bad revoke line");
        // The first revocation of a serial wins, as in the store.
        if (!this.revocations.has(line.serial)) {
          this.revocations.set(line.serial, { serial: line.serial, reason: line.reason, revokedAtMs: line.atMs, ...(line.key ? { key: line.key } : {}) });
        }
        if (line.key) this.revokedKeys.add(line.key);
        return;
      }
      case "crl": {
        const n = BigInt(line.n);
        if (n > this.crlHighWater) this.crlHighWater = n;
        return;
      }
      case "accept":
        if (!Array.isArray(line.serials)) throw new Error("bad accept line");
        for (const serial of line.serials) this.accepted.add(serial);
        return;
      default:
        throw new Error(`unknown ledger line ${String((line as { t?: unknown }).t)}`);
    }
  }

  /** Serials the store must hold: every recorded certificate an operator has not given up. */
  expectedCertificates(): string[] {
    return [...this.certificates.keys()].filter((serial) => !this.accepted.has(serial));
  }
}

/**
 * The ledger file of one CA. Open it with `TrustLedger.open`; nothing is written until the
 * first append (which writes the `init` line first).
 */
export class TrustLedger {
  readonly path: string;
  readonly pkiId: string;
  readonly state = new LedgerState();
  #offset = 0;
  #tail: Promise<unknown> = Promise.resolve();
  #pending: Array<{ lines: LedgerLine[]; resolve: () => void; reject: (e: unknown) => void }> = [];
  #flushing = false;
  #dirReady = false;

  private constructor(path: string, pkiId: string) {
    this.path = path;
    this.pkiId = pkiId;
  }

  /**
   * Reads the ledger at `path` for the CA `pkiId`. A missing file is an empty ledger. Throws
   * `conflict` when the file belongs to another CA (see `setAsideForeignLedger`) and `internal`
   * naming the line when a complete line does not parse (fail closed: a damaged ledger cannot
   * vouch for anything).
   */
  static async open(path: string, pkiId: string): Promise<TrustLedger> {
    const ledger = new TrustLedger(path, pkiId);
    await ledger.#readNew();
    if (ledger.state.pkiId !== undefined && ledger.state.pkiId !== pkiId) {
      throw new PosternError("conflict", `the trust ledger ${path} belongs to another CA (root ${ledger.state.pkiId.slice(0, 16)}…, this one is ${pkiId.slice(0, 16)}…)`);
    }
    return ledger;
  }

  /** Reads what other processes appended since the last read. */
  refresh(): Promise<void> {
    return this.#serial(() => this.#readNew());
  }

  /** Records issued certificates (once the store has them, before they are handed out or written to files). */
  recordCertificates(certs: ReadonlyArray<{ serial: string; fingerprint: string }>): Promise<void> {
    const fresh = certs.filter((c) => !this.state.certificates.has(c.serial));
    return this.#append(fresh.map((c) => ({ t: "cert", serial: c.serial, fp: c.fingerprint })));
  }

  /** Records a revocation before the store sees it. */
  recordRevocation(entry: RevokedEntry, keyHash: string | undefined): Promise<void> {
    return this.recordRevocations([{ entry, keyHash }]);
  }

  /** Records several revocations in one append. */
  recordRevocations(items: ReadonlyArray<{ entry: RevokedEntry; keyHash: string | undefined }>): Promise<void> {
    const fresh = items.filter(({ entry, keyHash }) => !this.state.revocations.has(entry.serial) || (keyHash !== undefined && !this.state.revokedKeys.has(keyHash)));
    return this.#append(fresh.map(({ entry, keyHash }) => ({ t: "revoke", serial: entry.serial, reason: entry.reason, atMs: entry.revokedAtMs, ...(keyHash ? { key: keyHash } : {}) })));
  }

  /** Records a cRLNumber before a CRL with it is published. */
  recordCrlNumber(n: bigint): Promise<void> {
    if (n <= this.state.crlHighWater) return Promise.resolve();
    return this.#append([{ t: "crl", n: n.toString() }]);
  }

  /** Records that an operator accepted the loss of these certificates from the store. */
  acceptLoss(serials: readonly string[], actor: string, atMs: number): Promise<void> {
    if (serials.length === 0) return Promise.resolve();
    return this.#append([{ t: "accept", serials: [...serials], actor, at: atMs }]);
  }

  /** A revocation another replica made (learnt over pub/sub): kept in memory, it wrote the line. */
  noteRevocation(entry: RevokedEntry, keyHash?: string): void {
    this.state.apply({ t: "revoke", serial: entry.serial, reason: entry.reason, atMs: entry.revokedAtMs, ...(keyHash ? { key: keyHash } : {}) });
  }

  /** Waits for appends in progress. */
  async close(): Promise<void> {
    await this.#tail.catch(() => undefined);
  }

  /**
   * Queues lines; appends made while a write is in progress go out together in the next one
   * (one lock, one fsync: group commit), each promise resolving once its lines are durable.
   */
  #append(lines: LedgerLine[]): Promise<void> {
    if (lines.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ lines, resolve, reject });
      if (!this.#flushing) {
        this.#flushing = true;
        void this.#serial(() => this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending;
      this.#pending = [];
      try {
        await this.#write(batch.flatMap((b) => b.lines));
        for (const b of batch) b.resolve();
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    // Synchronously after the last check: an append from now on starts the next flush.
    this.#flushing = false;
  }

  async #write(lines: LedgerLine[]): Promise<void> {
    if (!this.#dirReady) {
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
      this.#dirReady = true;
    }
    await withFileMutex(`${this.path}.lock`, async () => {
      await this.#readNew(); // other writers' lines first, so the offset stays ours to move
      const all: LedgerLine[] = this.state.pkiId === undefined ? [{ t: "init", pkiId: this.pkiId, at: Date.now() }, ...lines] : lines;
      const text = all.map((l) => JSON.stringify(l) + "\n").join("");
      const handle = await open(this.path, "a", 0o600);
      let created = false;
      try {
        const { size } = await handle.stat();
        created = size === 0 && this.#offset === 0;
        // Under the lock nobody else is writing: bytes past the last newline were torn by a crash.
        if (size > this.#offset) await handle.truncate(this.#offset);
        await handle.writeFile(text);
        await handle.datasync();
      } finally {
        await handle.close();
      }
      if (created) await fsyncDir(dirname(this.path));
      this.#offset += Buffer.byteLength(text);
      for (const line of all) this.state.apply(line);
    });
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.catch(() => undefined).then(fn);
    this.#tail = run;
    return run;
  }

  /** Applies the complete lines past the offset (reads only those bytes). */
  async #readNew(): Promise<void> {
    let handle: FileHandle;
    try {
      handle = await open(this.path, "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    let data: Buffer;
    try {
      const { size } = await handle.stat();
      if (size <= this.#offset) return;
      data = Buffer.alloc(size - this.#offset);
      const { bytesRead } = await handle.read(data, 0, data.length, this.#offset);
      data = data.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
    let start = 0;
    for (let nl = data.indexOf(0x0a, start); nl !== -1; nl = data.indexOf(0x0a, start)) {
      try {
        this.state.apply(JSON.parse(data.toString("utf8", start, nl)) as LedgerLine);
      } catch (cause) {
        throw new PosternError("internal", `the trust ledger ${this.path} is damaged near byte ${this.#offset + start}`, { cause });
      }
      start = nl + 1;
    }
    // A final line without its newline is an append still in progress, or one torn by a crash
    // (the next append, under the lock, cuts it off): read it once it is complete.
    this.#offset += start;
  }
}

/**
 * Moves a ledger that belongs to a CA no longer in the PKI directory out of the way
 * (`ledger.jsonl` -> `ledger.<old id>.jsonl`), so a new CA starts its own. Returns the new path.
 */
export async function setAsideForeignLedger(path: string, oldPkiId: string): Promise<string> {
  const aside = path.replace(/\.jsonl$/, "") + `.${oldPkiId.slice(0, 16)}.jsonl`;
  await rename(path, aside);
  await fsyncDir(dirname(path));
  return aside;
}

/** The CA id recorded in the ledger at `path`, if any (reads only the first line). */
export async function ledgerPkiId(path: string): Promise<string | undefined> {
  try {
    const text = await readFile(path, "utf8");
    const first = text.slice(0, text.indexOf("\n"));
    const line = JSON.parse(first) as Partial<LedgerLine>;
    return line.t === "init" ? (line as { pkiId: string }).pkiId : undefined;
  } catch {
    return undefined;
  }
}
