/**
 * Rules both PKI store adapters share, so they behave identically under the contract suite:
 * input validation, the page size, the opaque cursor, filter matching and record copies.
 */
import { PosternError } from "../../errors.js";
import {
  REVOCATION_REASONS,
  type CertificateFilter,
  type CertificateRecord,
  type EnrollmentTokenRecord,
  type RevocationReason,
} from "./store.js";

/** Default and maximum page sizes for `listCertificates`. */
export const DEFAULT_PAGE_LIMIT = 100;
export const MAX_PAGE_LIMIT = 1000;

const HEX = /^(?:[0-9a-f]{2})+$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Lowercases and checks a serial (non-empty even-length hex); `bad-request` otherwise. */
export function normalizeSerial(serial: string): string {
  const s = typeof serial === "string" ? serial.toLowerCase() : "";
  if (!HEX.test(s) || s.length > 80) throw new PosternError("bad-request", "serial must be hex");
  return s;
}

/** True for a known RFC 5280 reason name. */
export function isRevocationReason(value: unknown): value is RevocationReason {
  return typeof value === "string" && Object.hasOwn(REVOCATION_REASONS, value);
}

const finite = (n: unknown): n is number => typeof n === "number" && Number.isFinite(n);

/**
 * Validates a record before storing it and returns a normalised copy. A revoked record must
 * carry its time and reason; a valid one must not (so a put can never fake a revocation).
 */
export function checkCertificateRecord(record: CertificateRecord): CertificateRecord {
  const serial = normalizeSerial(record.serial);
  const bad = (what: string) => new PosternError("bad-request", `certificate record: ${what}`);
  if (typeof record.identity !== "string" || record.identity.length === 0) throw bad("identity");
  if (!Array.isArray(record.roles) || !record.roles.every((r) => typeof r === "string")) throw bad("roles");
  if (typeof record.fingerprint !== "string" || record.fingerprint.length === 0) throw bad("fingerprint");
  if (![record.notBeforeMs, record.notAfterMs, record.issuedAtMs].every(finite)) throw bad("times");
  if (typeof record.pem !== "string" || !record.pem.includes("BEGIN CERTIFICATE")) throw bad("pem");
  if (record.status === "revoked") {
    if (!finite(record.revokedAtMs) || !isRevocationReason(record.revocationReason)) throw bad("revocation");
  } else if (record.status !== "valid" || record.revokedAtMs !== undefined || record.revocationReason !== undefined) {
    throw bad("status");
  }
  if (record.profile !== undefined && typeof record.profile !== "string") throw bad("profile");
  return copyRecord({ ...record, serial });
}

/** Validates an enrollment token record (the hash, never the token). */
export function checkTokenRecord(record: EnrollmentTokenRecord): EnrollmentTokenRecord {
  const bad = (what: string) => new PosternError("bad-request", `token record: ${what}`);
  if (typeof record.tokenHash !== "string" || !SHA256_HEX.test(record.tokenHash)) throw bad("tokenHash");
  if (typeof record.identity !== "string" || record.identity.length === 0) throw bad("identity");
  if (!Array.isArray(record.roles) || !record.roles.every((r) => typeof r === "string")) throw bad("roles");
  if (!finite(record.expiresAtMs) || !finite(record.createdAtMs)) throw bad("times");
  if (record.profile !== undefined && typeof record.profile !== "string") throw bad("profile");
  if (record.failures !== undefined && !(Number.isInteger(record.failures) && record.failures >= 0)) throw bad("failures");
  return { ...record, roles: [...record.roles] };
}

/** A deep-enough copy so callers cannot mutate a store's state. */
export function copyRecord(record: CertificateRecord): CertificateRecord {
  return { ...record, roles: [...record.roles] };
}

/** Clamps the requested page size to 1..1000 (default 100). */
export function pageLimit(filter: CertificateFilter): number {
  const limit = filter.limit ?? DEFAULT_PAGE_LIMIT;
  if (!Number.isInteger(limit) || limit < 1) throw new PosternError("bad-request", "limit must be a positive integer");
  return Math.min(limit, MAX_PAGE_LIMIT);
}

/** Encodes the position after `serial` as an opaque cursor. */
export function encodeCursor(serial: string): string {
  return Buffer.from(JSON.stringify({ v: 1, after: serial })).toString("base64url");
}

/** Decodes a cursor from `encodeCursor`; `bad-request` for anything else. */
export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as { v?: unknown; after?: unknown };
    if (parsed.v === 1 && typeof parsed.after === "string") return normalizeSerial(parsed.after);
  } catch {
    // fall through to the stable error below
  }
  throw new PosternError("bad-request", "invalid cursor");
}

/** Whether a record passes the status, identity and expiry filters (the cursor aside). */
export function matchesFilter(record: CertificateRecord, filter: CertificateFilter): boolean {
  if (filter.status !== undefined && record.status !== filter.status) return false;
  if (filter.identity !== undefined && record.identity !== filter.identity) return false;
  if (filter.expiringBeforeMs !== undefined && !(record.notAfterMs < filter.expiringBeforeMs)) return false;
  return true;
}

/** Same fingerprint means the same certificate: re-putting it is an idempotent retry. */
export function conflictUnlessSame(existing: CertificateRecord, incoming: CertificateRecord): void {
  if (existing.fingerprint !== incoming.fingerprint) {
    throw new PosternError("conflict", "a different certificate with this serial exists");
  }
}
