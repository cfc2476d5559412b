/**
 * The PKI audit log: one JSON line per event, each holding the SHA-256 of the previous line's
 * exact bytes, so editing, deleting or reordering a line breaks the chain (`verifyAuditLog`).
 * Appends are durable (fsync) before they resolve. Tamper-evident, not tamper-proof: whoever
 * can rewrite the whole file can rebuild the chain, so anchor `head()` somewhere else.
 *
 * Rotation (`data.retention.audit`): under the lock, before a batch, a full or old file is
 * renamed to `<path>.<NNNNNN>` and the new file begins with an `audit.rotate` event chained to
 * the last line of the rotated one (it names that file and what retention removed), so the
 * chain runs on across files and `verifyAuditLog` checks them all.
 */
import { createHash } from "node:crypto";
import { mkdir, open, stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { PosternError } from "../../errors.js";
import {
  applyRetention,
  firstLineTimeMs,
  fsyncDir,
  listRotated,
  nodeFileSystem,
  rotateFile,
  rotationDue,
  rotationPolicy,
  withFileMutex,
  type RetentionSettings,
  type RotationPolicy,
} from "../../storage/index.js";

export { verifyAuditLog, type AuditVerifyResult } from "./verify.js";

/** One line of the log, in this key order. */
export interface AuditEvent {
  seq: number;
  /** ISO 8601 UTC time of the append. */
  at: string;
  actor: string;
  action: string;
  subject: string;
  details: Record<string, unknown>;
  /** Hex SHA-256 of the previous line's bytes (without its newline); 64 zeros for the first. */
  prev: string;
}

export interface AuditEntry {
  actor: string;
  action: string;
  subject: string;
  details?: Record<string, unknown>;
}

/** The `prev` of the first line. */
export const AUDIT_GENESIS = "0".repeat(64);

/** The action of the first line of a file started by rotation. */
export const AUDIT_ROTATE_ACTION = "audit.rotate";

/** The time of an audit line (its `at`), or undefined. */
export function auditLineTimeMs(line: Buffer): number | undefined {
  const at = /"at":"([^"]+)"/.exec(line.toString("utf8", 0, Math.min(line.length, 200)))?.[1];
  const ms = at === undefined ? Number.NaN : Date.parse(at);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Hex SHA-256 of one line's bytes, as the next line's `prev`. */
export function auditLineHash(line: Uint8Array | string): string {
  return createHash("sha256").update(line).digest("hex");
}

/**
 * Appends audit events. Several processes may append to one file (replicas sharing a data
 * directory, a CLI next to a running gateway): each batch of appends takes the file's lock
 * (`<path>.lock`), reads the chain's head from the file itself, appends and fsyncs, so the
 * chain stays one sequence whoever writes. Appends within a process are ordered by call and
 * each resolves only once durable. After a failed write every later append rejects (fail
 * closed: an admin action must not proceed unaudited); reopen to recover.
 */
export class AuditLog {
  readonly #path: string;
  readonly #now: () => number;
  #head: { seq: number; hash: string };
  #pending: Array<{ entry: Required<AuditEntry>; resolve: (e: AuditEvent) => void; reject: (e: unknown) => void }> = [];
  #flushing: Promise<void> | undefined;
  #failed: unknown;
  #dirReady = false;
  readonly #rotation: RotationPolicy | undefined;

  private constructor(path: string, seq: number, prev: string, now: () => number, retention: RetentionSettings | undefined) {
    this.#path = path;
    this.#head = { seq, hash: prev };
    this.#now = now;
    this.#rotation = retention && rotationPolicy(retention, auditLineTimeMs, now);
  }

  /**
   * Opens the log and reads its head; the file is created at the first append (mode 0600), so
   * opening writes nothing. An unreadable last complete line is refused with `internal`, since
   * continuing would hide it.
   */
  static async open(path: string, opts: { now?: () => number; retention?: RetentionSettings } = {}): Promise<AuditLog> {
    const head = await readHead(path, false);
    return new AuditLog(path, head.seq, head.hash, opts.now ?? Date.now, opts.retention);
  }

  /** Appends one event and resolves with it once it is on disk. */
  append(entry: AuditEntry): Promise<AuditEvent> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    for (const key of ["actor", "action", "subject"] as const) {
      if (typeof entry[key] !== "string") return Promise.reject(new TypeError(`audit ${key} must be a string`));
    }
    const full = { ...entry, details: entry.details ?? {} };
    try {
      JSON.stringify(full.details); // may throw (BigInt, cycles): before anything is queued
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<AuditEvent>((resolve, reject) => {
      this.#pending.push({ entry: full, resolve, reject });
      this.#flushing ??= this.#flush();
    });
  }

  async #flush(): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending;
      this.#pending = [];
      try {
        if (this.#failed !== undefined) throw this.#failed;
        if (!this.#dirReady) {
          await mkdir(dirname(this.#path), { recursive: true, mode: 0o700 });
          this.#dirReady = true;
        }
        const events = await withFileMutex(`${this.#path}.lock`, () => this.#appendBatch(batch.map((b) => b.entry)));
        batch.forEach((b, i) => b.resolve(events[i]!));
      } catch (err) {
        this.#failed ??= err;
        for (const b of batch) b.reject(err);
      }
    }
    this.#flushing = undefined;
  }

  /** Under the lock: continue the chain from the file's own last line (or the newest rotated file's). */
  async #appendBatch(entries: Required<AuditEntry>[]): Promise<AuditEvent[]> {
    let { seq, hash } = await readHead(this.#path, true);
    const at = new Date(this.#now()).toISOString();
    const rotate = await this.#rotateIfDue();
    const events: AuditEvent[] = [];
    let text = "";
    const lines = rotate ? [{ actor: "postern", action: AUDIT_ROTATE_ACTION, subject: rotate.rotated, details: { removed: rotate.removed } }, ...entries] : entries;
    for (const e of lines) {
      const event: AuditEvent = { seq: seq + 1, at, actor: e.actor, action: e.action, subject: e.subject, details: e.details, prev: hash };
      const line = JSON.stringify(event);
      seq = event.seq;
      hash = auditLineHash(line);
      text += line + "\n";
      events.push(event);
    }
    const handle = await open(this.#path, "a", 0o600);
    let created = false;
    try {
      created = (await handle.stat()).size === 0;
      await handle.writeFile(text);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    if (created) await fsyncDir(dirname(this.#path));
    this.#head = { seq, hash };
    return rotate ? events.slice(1) : events;
  }

  /**
   * Under the lock, before a batch: rotates a full or old file and applies retention; resolves
   * with what the new file's first line must say. A new file after rotated ones that holds
   * nothing yet (a crash came between the rename and the first append) gets that line too.
   */
  async #rotateIfDue(): Promise<{ rotated: string; removed: string[] } | undefined> {
    const fs = nodeFileSystem;
    const size = (await fs.fileSize(this.#path)) ?? 0;
    if (size === 0) {
      const newest = (await listRotated(fs, this.#path)).at(-1);
      return newest && { rotated: basename(newest.path), removed: [] };
    }
    const policy = this.#rotation;
    if (!policy || !rotationDue(policy, size, await firstLineTimeMs(fs, this.#path, auditLineTimeMs))) return undefined;
    const rotated = await rotateFile(fs, this.#path);
    const removed = await applyRetention(fs, this.#path, policy);
    return { rotated: basename(rotated.path), removed: removed.map((p) => basename(p)) };
  }

  /** seq and hash of the last line this process saw: record it elsewhere to detect truncation or a rewrite. */
  head(): { seq: number; hash: string } {
    return { ...this.#head };
  }

  /** Waits for pending appends. */
  async close(): Promise<void> {
    await this.#flushing;
  }
}

/** The chain's head in the file at `path` (genesis when empty or missing). `repair` cuts a torn tail. */
async function readHead(path: string, repair: boolean): Promise<{ seq: number; hash: string }> {
  let last = await readLastLine(path, repair);
  // Just rotated (or a crash came between the rename and the next append): the chain goes on from the rotated file.
  if (!last) {
    const newest = (await listRotated(nodeFileSystem, path)).at(-1);
    if (newest) {
      last = await readLastLine(newest.path, false);
      path = newest.path;
    }
  }
  if (!last) return { seq: 0, hash: AUDIT_GENESIS };
  try {
    const event = JSON.parse(last.toString("utf8")) as Partial<AuditEvent>;
    if (!Number.isInteger(event.seq)) throw new Error("no seq");
    return { seq: event.seq as number, hash: auditLineHash(last) };
  } catch (err) {
    throw new PosternError("internal", `audit log ${path} ends with an unreadable line`, { cause: err });
  }
}

/**
 * Returns the last complete line (without newline). A torn tail (a crash mid-append, never
 * acknowledged) is cut off when `repair` (under the lock), else skipped.
 */
async function readLastLine(path: string, repair: boolean): Promise<Buffer | undefined> {
  let size = await stat(path).then(
    (s) => s.size,
    (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return 0;
      throw err;
    },
  );
  if (size === 0) return undefined;
  const handle = await open(path, repair ? "r+" : "r");
  try {
    for (let window = 64 * 1024; size > 0; window *= 2) {
      const start = Math.max(0, size - window);
      const buf = Buffer.alloc(size - start);
      await handle.read(buf, 0, buf.length, start);
      const end = buf.lastIndexOf(0x0a);
      if (end === -1 && start > 0) continue; // one very long line: widen the window
      if (end !== buf.length - 1) {
        size = start + end + 1; // end = -1 empties a file holding only a torn line
        if (repair) {
          await handle.truncate(size);
          await handle.sync();
        }
        continue;
      }
      const begin = end > 0 ? buf.lastIndexOf(0x0a, end - 1) : -1;
      if (begin === -1 && start > 0) continue;
      return buf.subarray(begin + 1, end);
    }
    return undefined;
  } finally {
    await handle.close();
  }
}
