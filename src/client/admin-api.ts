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
