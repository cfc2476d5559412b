/**
 * The file store's in-memory state, no I/O: journal operations applied to maps, the paged
 * listing, and the snapshot written at compaction. Applying the same operation twice is
 * harmless (a compaction may replay lines the snapshot already holds).
 */
import {
  checkCertificateRecord, checkTokenRecord, copyRecord, decodeCursor, encodeCursor,
  isRevocationReason, matchesFilter, pageLimit,
} from "./common.js";
import type {
  CertificateFilter, CertificatePage, CertificateRecord, EnrollmentTokenRecord, RevocationReason,
  RevokedEntry, StoredCrl,
} from "./store.js";

/** One journal line. */
export type JournalOp =
  | { op: "cert"; rec: CertificateRecord }
  | { op: "revoke"; serial: string; reason: RevocationReason; atMs: number }
  | { op: "token"; rec: EnrollmentTokenRecord }
  | { op: "consume"; tokenHash: string }
  | { op: "tokfail"; tokenHash: string; failures: number; max: number }
  /** Written by older versions: a bare cRLNumber counter. */
  | { op: "crl"; n: string }
  | { op: "crlstate"; n: string; thisUpdateMs: number; nextUpdateMs: number; digest: string };

/** Certificates, revocations, tokens and the CRL counter, as maps. */
export class StoreMemoryIndex {
  readonly certs = new Map<string, CertificateRecord>();
  readonly revoked = new Map<string, RevokedEntry>();
  readonly tokens = new Map<string, EnrollmentTokenRecord>();
  crlNumber = 0n;
  /** The last stored CRL state (the DER stays in memory only: this store has one process). */
  crl: StoredCrl | undefined;
  #sorted: string[] | undefined;

  /**
   * Applies one operation. `untrusted` (journal replay) re-validates records and throws on
   * anything unexpected, so a damaged journal fails the open instead of loading half-truths.
   */
  apply(op: JournalOp, untrusted = false): void {
    switch (op.op) {
      case "cert": {
        const rec = untrusted ? checkCertificateRecord(op.rec) : op.rec;
        if (this.certs.has(rec.serial)) return; // a repeated line never downgrades a revocation
        this.certs.set(rec.serial, rec);
        this.#sorted = undefined;
        if (rec.status === "revoked") this.revoked.set(rec.serial, revokedEntryOf(rec));
        return;
      }
      case "revoke": {
        if (!isRevocationReason(op.reason) || !Number.isFinite(op.atMs)) throw new Error("bad revoke op");
        const rec = this.certs.get(op.serial);
        if (!rec || rec.status === "revoked") return;
        Object.assign(rec, { status: "revoked", revokedAtMs: op.atMs, revocationReason: op.reason });
        this.revoked.set(op.serial, revokedEntryOf(rec));
        return;
      }
      case "token":
        this.tokens.set(op.rec.tokenHash, untrusted ? checkTokenRecord(op.rec) : op.rec);
        return;
      case "consume":
        this.tokens.delete(op.tokenHash);
        return;
      case "tokfail": {
        const rec = this.tokens.get(op.tokenHash);
        if (!rec) return;
        if (op.failures >= op.max) this.tokens.delete(op.tokenHash);
        else rec.failures = op.failures;
        return;
      }
      case "crl": {
        const n = BigInt(op.n);
        if (n > this.crlNumber) this.crlNumber = n;
        return;
      }
      case "crlstate": {
        const n = BigInt(op.n);
        if (n <= this.crlNumber) return;
        if (!Number.isFinite(op.thisUpdateMs) || !Number.isFinite(op.nextUpdateMs) || typeof op.digest !== "string") throw new Error("bad crlstate op");
        this.crlNumber = n;
        this.crl = { crlNumber: n, thisUpdateMs: op.thisUpdateMs, nextUpdateMs: op.nextUpdateMs, digest: op.digest };
        return;
      }
      default:
        throw new Error(`unknown journal op ${String((op as { op?: unknown }).op)}`);
    }
  }

  /** Pages in serial order; one look-ahead match decides whether a next page exists. */
  page(filter: CertificateFilter): CertificatePage {
    const limit = pageLimit(filter);
    const after = decodeCursor(filter.cursor);
    this.#sorted ??= [...this.certs.keys()].sort();
    const sorted = this.#sorted;
    const items: CertificateRecord[] = [];
    for (let i = after === undefined ? 0 : upperBound(sorted, after); i < sorted.length && items.length <= limit; i++) {
      const rec = this.certs.get(sorted[i] ?? "");
      if (rec && matchesFilter(rec, filter)) items.push(copyRecord(rec));
    }
    if (items.length <= limit) return { items };
    items.length = limit;
    return { items, nextCursor: encodeCursor(items[limit - 1]?.serial ?? "") };
  }

  /** Number of records a snapshot would hold (to decide when compaction pays). */
  get liveCount(): number {
    return this.certs.size + this.tokens.size + 1;
  }

  /** The whole state as journal lines, in chunks (no giant string); expired tokens dropped. */
  snapshot(nowMs: number): { chunks: string[]; lineCount: number } {
    const lines: string[] = [];
    const crl = this.crl;
    if (crl) lines.push(JSON.stringify({ op: "crlstate", n: crl.crlNumber.toString(), thisUpdateMs: crl.thisUpdateMs, nextUpdateMs: crl.nextUpdateMs, digest: crl.digest }));
    lines.push(JSON.stringify({ op: "crl", n: this.crlNumber.toString() }));
    for (const rec of this.certs.values()) lines.push(JSON.stringify({ op: "cert", rec }));
    for (const rec of this.tokens.values()) {
      if (rec.expiresAtMs > nowMs) lines.push(JSON.stringify({ op: "token", rec }));
    }
    const chunks: string[] = [];
    for (let i = 0; i < lines.length; i += 5000) chunks.push(lines.slice(i, i + 5000).join("\n") + "\n");
    return { chunks, lineCount: lines.length };
  }
}

/** The RevokedEntry view of a revoked record. */
export function revokedEntryOf(rec: CertificateRecord): RevokedEntry {
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
