/**
 * The PKI store port: the issued-certificate inventory, revocations, enrollment tokens and
 * the CRL counter. Adapters: `file-store.ts` (embedded default, one process) and
 * `redis-store.ts` (several replicas). One contract test suite runs against both.
 */

/** RFC 5280 §5.3.1 CRLReason names (value 7 is unused by the RFC). */
export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;

export type RevocationReason = keyof typeof REVOCATION_REASONS;

export type CertificateStatus = "valid" | "revoked";

export interface CertificateRecord {
  /** Lowercase hex of the certificate's serialNumber exactly as encoded (no normalisation). */
  serial: string;
  /** The identity the certificate maps to (SAN URI, else CN). */
  identity: string;
  roles: string[];
  /** base64url SHA-256 of the DER (x5t#S256). */
  fingerprint: string;
  notBeforeMs: number;
  notAfterMs: number;
  issuedAtMs: number;
  /** PEM of the leaf only. */
  pem: string;
  status: CertificateStatus;
  revokedAtMs?: number;
  revocationReason?: RevocationReason;
  /** Profile name it was issued under. */
  profile?: string;
}

export interface CertificateFilter {
  status?: CertificateStatus;
  identity?: string;
  /** Only certificates whose notAfter is before this instant. */
  expiringBeforeMs?: number;
  /** Opaque cursor from a previous page. */
  cursor?: string;
  /** Page size, default 100, at most 1000. */
  limit?: number;
}

export interface CertificatePage {
  items: CertificateRecord[];
  nextCursor?: string;
}

export interface RevokedEntry {
  serial: string;
  revokedAtMs: number;
  reason: RevocationReason;
}

export interface EnrollmentTokenRecord {
  /** SHA-256 hex of the token; the token itself is never stored. */
  tokenHash: string;
  identity: string;
  roles: string[];
  profile?: string;
  expiresAtMs: number;
  createdAtMs: number;
}

export interface PkiStore {
  putCertificate(record: CertificateRecord): Promise<void>;
  getCertificate(serial: string): Promise<CertificateRecord | undefined>;
  listCertificates(filter: CertificateFilter): Promise<CertificatePage>;
  /**
   * Marks a certificate revoked. Idempotent: revoking a revoked certificate keeps the first
   * time and reason. Returns the record after the change, or undefined for an unknown serial.
   */
  revoke(serial: string, reason: RevocationReason, atMs: number): Promise<CertificateRecord | undefined>;
  /** Every revoked serial, for the CRL and the handshake revocation index. */
  listRevoked(): Promise<RevokedEntry[]>;
  putToken(record: EnrollmentTokenRecord): Promise<void>;
  /**
   * Consumes a token: the first caller gets the record, every later caller (and any caller
   * after expiry) gets undefined. Atomic across replicas.
   */
  consumeToken(tokenHash: string, nowMs: number): Promise<EnrollmentTokenRecord | undefined>;
  /** Returns the next cRLNumber; strictly increasing across calls and restarts. */
  nextCrlNumber(): Promise<bigint>;
  /** Calls `onRevoked` when any replica revokes a serial; returns an unsubscribe function. */
  subscribeRevocations(onRevoked: (entry: RevokedEntry) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}
