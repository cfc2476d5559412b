/**
 * The PKI store port: the issued-certificate inventory, revocations, enrollment tokens and
 * the published CRL's state. Adapters: `file-store.ts` (embedded default, one process) and
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
  /** Refused enrollment attempts so far (absent: none). */
  failures?: number;
}

/**
 * The CRL every replica serves, kept with the revocations so replicas agree on its number and
 * bytes. A new CRL is stored only with a higher number than the stored one.
 */
export interface StoredCrl {
  crlNumber: bigint;
  thisUpdateMs: number;
  nextUpdateMs: number;
  /** Hex SHA-256 of the revocation set it lists (`crlEntriesDigest` in crl.ts). */
  digest: string;
  /** The signed CRL (DER). Adapters for one process (the file store) may drop it at restart. */
  der?: Uint8Array;
}

/** Sizes the trust check compares with the ledger between full checks. */
export interface StoreCounts {
  certificates: number;
  revoked: number;
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
  /** The serials among `serials` that have no certificate record (order kept). */
  missingCertificates(serials: readonly string[]): Promise<string[]>;
  /** How many certificates and revocations the store holds. */
  counts(): Promise<StoreCounts>;
  putToken(record: EnrollmentTokenRecord): Promise<void>;
  /** Reads a token without spending it; undefined when unknown or expired at `nowMs`. */
  peekToken(tokenHash: string, nowMs: number): Promise<EnrollmentTokenRecord | undefined>;
  /**
   * Consumes a token: the first caller gets the record, every later caller (and any caller
   * after expiry) gets undefined. Atomic across replicas.
   */
  consumeToken(tokenHash: string, nowMs: number): Promise<EnrollmentTokenRecord | undefined>;
  /**
   * Counts one refused use of a token; the `maxFailures`-th deletes it. Returns the failures so
   * far, or 0 for an unknown token. Atomic across replicas.
   */
  failToken(tokenHash: string, maxFailures: number): Promise<number>;
  /** Every token not expired at `nowMs` (for backups). */
  listTokens(nowMs: number): Promise<EnrollmentTokenRecord[]>;
  /** The CRL state last stored, if any; `withDer: false` leaves the (large) DER out. */
  getCrlState(opts?: { withDer?: boolean }): Promise<StoredCrl | undefined>;
  /**
   * Stores `crl` when its number is above the stored one, else keeps the stored state; returns
   * the state stored afterwards (the first writer of a number wins). Never lowers the number.
   */
  putCrlState(crl: StoredCrl): Promise<StoredCrl>;
  /** Calls `onRevoked` when any replica revokes a serial; returns an unsubscribe function. */
  subscribeRevocations(onRevoked: (entry: RevokedEntry) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}
