/**
 * The PKI audit log: one JSON line per event, each holding the SHA-256 of the previous line's
 * exact bytes, so editing, deleting or reordering a line breaks the chain (`verifyAuditLog`).
 * Appends are durable (fsync) before they resolve. Tamper-evident, not tamper-proof: whoever
 * can rewrite the whole file can rebuild the chain, so anchor `head()` somewhere else.
 */
import { createHash } from "node:crypto";
import { open, stat } from "node:fs/promises";
import { PosternError } from "../errors.js";
import { DurableAppender } from "./atomic-file.js";

export { verifyAuditLog, type AuditVerifyResult } from "./audit-verify.js";

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

/** Hex SHA-256 of one line's bytes, as the next line's `prev`. */
export function auditLineHash(line: Uint8Array | string): string {
  return createHash("sha256").update(line).digest("hex");
}

/**
 * Appends audit events. One writer per file (one process); appends within the process are
 * ordered by call and each resolves only once durable. After a failed write every later append
 * rejects (fail closed: an admin action must not proceed unaudited); reopen to recover.
 */
export class AuditLog {
  readonly #appender: DurableAppender;
  readonly #now: () => number;
  #seq: number;
  #prev: string;

  private constructor(appender: DurableAppender, seq: number, prev: string, now: () => number) {
    this.#appender = appender;
    this.#seq = seq;
    this.#prev = prev;
    this.#now = now;
  }

  /**
   * Opens or creates the log (mode 0600) and continues its chain. A torn final line (a crash
   * mid-append, never acknowledged) is cut off; an unreadable last complete line is refused
   * with `internal`, since continuing would hide it.
   */
  static async open(path: string, opts: { now?: () => number } = {}): Promise<AuditLog> {
    const last = await readLastLine(path);
    let seq = 0;
    let prev = AUDIT_GENESIS;
    if (last) {
      try {
        const event = JSON.parse(last.toString("utf8")) as Partial<AuditEvent>;
        if (!Number.isInteger(event.seq)) throw new Error("no seq");
        seq = event.seq as number;
      } catch (err) {
        throw new PosternError("internal", `audit log ${path} ends with an unreadable line`, { cause: err });
      }
      prev = auditLineHash(last);
    }
    return new AuditLog(await DurableAppender.open(path), seq, prev, opts.now ?? Date.now);
  }

  /** Appends one event and resolves with it once it is on disk. */
  append(entry: AuditEntry): Promise<AuditEvent> {
    for (const key of ["actor", "action", "subject"] as const) {
      if (typeof entry[key] !== "string") return Promise.reject(new TypeError(`audit ${key} must be a string`));
    }
    const event: AuditEvent = {
      seq: this.#seq + 1,
      at: new Date(this.#now()).toISOString(),
      actor: entry.actor,
      action: entry.action,
      subject: entry.subject,
      details: entry.details ?? {},
      prev: this.#prev,
    };
    let line: string;
    try {
      line = JSON.stringify(event); // may throw (BigInt, cycles): before any state changes
    } catch (err) {
      return Promise.reject(err);
    }
    // seq and prev advance synchronously, so concurrent appends chain in call order; the
    // appender writes them in that same order.
    this.#seq = event.seq;
    this.#prev = auditLineHash(line);
    return this.#appender.append(line + "\n").then(() => event);
  }

  /** seq and hash of the last line: record it elsewhere to detect truncation or a rewrite. */
  head(): { seq: number; hash: string } {
    return { seq: this.#seq, hash: this.#prev };
  }

  /** Waits for pending appends and closes the file. */
  close(): Promise<void> {
    return this.#appender.close();
  }
}

/** Returns the last complete line (without newline), truncating a torn tail first. */
async function readLastLine(path: string): Promise<Buffer | undefined> {
  let size = await stat(path).then(
    (s) => s.size,
    (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return 0;
      throw err;
    },
  );
  if (size === 0) return undefined;
  const handle = await open(path, "r+");
  try {
    for (let window = 64 * 1024; size > 0; window *= 2) {
      const start = Math.max(0, size - window);
      const buf = Buffer.alloc(size - start);
      await handle.read(buf, 0, buf.length, start);
      const end = buf.lastIndexOf(0x0a);
      if (end === -1 && start > 0) continue; // one very long line: widen the window
      if (end !== buf.length - 1) {
        size = start + end + 1; // end = -1 empties a file holding only a torn line
        await handle.truncate(size);
        await handle.sync();
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
