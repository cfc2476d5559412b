/**
 * The admin API on the wire: what each endpoint answers, in JSON. Defined once: the admin
 * endpoints produce these, `AdminClient`'s methods return them, and the CLI reads them.
 */

/** A certificate just issued, renewed or enrolled (201). */
export interface IssuedCertificateJson {
  serial: string;
  identity: string;
  roles: string[];
  profile: string;
  /** ISO 8601. */
  notAfter: string;
  /** base64url SHA-256 of the DER (the signature profile's `keyid`). */
  fingerprint: string;
  /** Leaf PEM followed by the issuing CA. */
  certificate: string;
}

/** A server-made key and certificate as a PKCS#12 bundle (201). */
export interface IssuedPkcs12Json extends IssuedCertificateJson {
  /** base64 of the PKCS#12 file. */
  pkcs12: string;
}

/** A one-time enrollment token (201). */
export interface TokenJson {
  token: string;
  /** ISO 8601. */
  expiresAt: string;
}

/** One certificate of the inventory. */
export interface CertificateJson {
  serial: string;
  identity: string;
  roles: string[];
  status: "valid" | "revoked";
  /** Absent for the built-in certificates made at bootstrap. */
  profile?: string;
  fingerprint: string;
  notBefore: string;
  notAfter: string;
  revokedAt?: string;
  revocationReason?: string;
  certificate: string;
}

/** A page of the inventory; `nextCursor` fetches the next. */
export interface CertificatePageJson {
  items: CertificateJson[];
  nextCursor?: string;
}

/** Every valid certificate of an identity, revoked at once. */
export interface IdentityRevokedJson {
  identity: string;
  revoked: string[];
}

/** The gateway's own server certificate, renewed (201) and served to new handshakes. */
export interface ServerRenewalJson {
  serial: string;
  /** ISO 8601. */
  notAfter: string;
  /** The certificate it replaces (not revoked: it expires by itself). */
  previousSerial: string;
  /** Whether the key was kept (`keepKey`) rather than a new one made. */
  keptKey: boolean;
  /** Always true in a 201: the gateway that answered serves the new certificate now. */
  served: true;
}

/** `GET /v1/console/session`: who the console runs as, its CSRF token, what needs a code. */
export interface ConsoleSessionJson {
  identity: string;
  serial: string;
  /** Send back in `Postern-CSRF` on every mutating call from a browser. */
  csrfToken: string;
  /** Per action (token, issue, revoke, connection-close): whether it needs a one-time code now. */
  secondFactor: Record<string, boolean>;
}

/** One certificate of a chain, as `GET /v1/certificates/{serial}` shows it. */
export interface ChainCertificateJson {
  subject: string;
  issuer: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  fingerprint256: string;
}

/** `GET /v1/certificates/{serial}`: the record, its chain up to the root, and the OCSP responder's answer. */
export interface CertificateDetailJson extends CertificateJson {
  chain: ChainCertificateJson[];
  ocsp: { status: "good" | "revoked" | "unknown"; revokedAt?: string; reason?: string };
}

/** One live mTLS connection with a client certificate. */
export interface ConnectionJson {
  listener: string;
  id: number;
  identity: string;
  serial: string;
  remote: string;
  openedAt: string;
}

/** `GET /v1/audit`: the chain's verification and the last events, newest last. */
export interface AuditViewJson {
  verification: { ok: true; lines: number; head: string } | { ok: false; line: number; reason: string };
  events: Array<{ seq: number; at: string; actor: string; action: string; subject: string; details: Record<string, unknown> }>;
}

/** `GET /v1/traffic`: data-plane outcomes per minute over the last hour (oldest first). */
export interface TrafficJson {
  minutes: Array<{ at: string; outcomes: Record<string, number> }>;
}

/**
 * The key types the admin API makes keys of (a PKCS#12 issue's `keyType`) and a client may enroll
 * with, as the PKI names them: the CLI checks its flags against this list without loading the PKI.
 */
export const KEY_TYPES = ["P-256", "P-384", "Ed25519", "RSA-2048", "RSA-3072", "RSA-4096"] as const;

/** The revocation reasons the admin API takes: RFC 5280 CRLReason names (removeFromCRL is no reason to revoke). */
export const REVOCATION_REASON_NAMES = ["unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded", "cessationOfOperation", "certificateHold", "privilegeWithdrawn", "aACompromise"] as const;
