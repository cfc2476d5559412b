/**
 * CSR enrollment policy: a parsed, self-signed CSR is checked against a profile and, when every
 * check passes, certified as a clientAuth leaf. Refusals carry stable codes: csr-invalid,
 * csr-weak-key, csr-ca-request, csr-forbidden-name. Only the public key and the names Postern
 * checked go into the certificate; any other requested extension is ignored, never copied.
 */
import { PosternError } from "../../errors.js";
import { parseCsr, type ParsedCsr } from "./csr-parse.js";
import { issueLeafDer, type IssuedCertificate, type IssuingCa } from "./issue.js";
import {
  identityAllowed,
  keyAllowed,
  lifetimeFor,
  rolesAllowed,
  sanAllowed,
  type CertificateProfile,
  type ProfileKeyType,
} from "./profile.js";

export { parseCsr, type ParsedCsr } from "./csr-parse.js";

/** What the caller (enrollment token, admin request) binds the certificate to. */
export interface CsrBinding {
  /** The identity to certify; when absent the CSR's first SAN URI, else its CN. */
  identity?: string | undefined;
  /** Roles to grant; when absent the CSR's OU values. */
  roles?: readonly string[] | undefined;
}

/** The names a certificate may carry after validation. */
export interface ValidatedCsr {
  identity: string;
  roles: string[];
  dnsNames: string[];
  ipAddresses: string[];
  /** Extra URIs beyond the identity. */
  uris: string[];
}

const URI_IDENTITY = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//;
const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** Checks key, CA powers and names against the profile. Throws a csr-* PosternError. */
export function validateCsr(csr: ParsedCsr, profile: CertificateProfile, binding: CsrBinding = {}): ValidatedCsr {
  checkKey(csr, profile);
  if (csr.requestsCa || csr.requestsCertSign) {
    throw new PosternError("csr-ca-request", "the CSR asks for CA powers (basicConstraints cA or keyCertSign/cRLSign)");
  }
  const forbidden = (detail: string): PosternError => new PosternError("csr-forbidden-name", detail);
  const identity = binding.identity ?? csr.uris[0] ?? csr.commonNames[0];
  if (identity === undefined || identity === "") throw forbidden("the CSR names no identity (SAN URI or CN)");
  if (!identityAllowed(profile, identity)) throw forbidden(`profile ${profile.name} does not allow this identity`);
  const isUri = URI_IDENTITY.test(identity);
  const expectedCn = isUri ? identity.split("/").filter((s) => s !== "").pop() : identity;
  for (const cn of csr.commonNames) {
    if (cn !== expectedCn && cn !== identity) throw forbidden("the CSR's CN differs from the identity");
  }
  if (csr.commonNames.length > 1) throw forbidden("the CSR has more than one CN");
  const roles = [...new Set(binding.roles ?? csr.organizationalUnits)];
  if (binding.roles && !csr.organizationalUnits.every((ou) => roles.includes(ou))) {
    throw forbidden("the CSR asks for a role it was not granted");
  }
  if (!rolesAllowed(profile, roles)) throw forbidden(`profile ${profile.name} does not allow a requested role`);
  if (csr.otherSanKinds.length > 0) throw forbidden("only DNS, IP and URI subjectAltNames are certified");
  const uris = csr.uris.filter((u) => u !== identity);
  for (const u of uris) if (!sanAllowed(profile, "uri", u)) throw forbidden("a requested URI SAN is not allowed");
  const dnsNames = csr.dnsNames.map((d) => d.toLowerCase());
  for (const d of dnsNames) {
    if (!DNS_NAME.test(d) || !sanAllowed(profile, "dns", d)) throw forbidden("a requested DNS SAN is not allowed");
  }
  for (const ip of csr.ipAddresses) if (!sanAllowed(profile, "ip", ip)) throw forbidden("a requested IP SAN is not allowed");
  return { identity, roles, dnsNames: [...new Set(dnsNames)], ipAddresses: [...new Set(csr.ipAddresses)], uris: [...new Set(uris)] };
}

function checkKey(csr: ParsedCsr, profile: CertificateProfile): void {
  let family: ProfileKeyType | undefined;
  if (csr.keyType === "ed25519") family = "Ed25519";
  else if (csr.keyType === "rsa") family = "RSA";
  else if (csr.keyType === "ec" && csr.namedCurve === "prime256v1") family = "P-256";
  else if (csr.keyType === "ec" && csr.namedCurve === "secp384r1") family = "P-384";
  const weak = (detail: string): PosternError => new PosternError("csr-weak-key", detail);
  if (family === undefined) throw weak(`key type ${csr.keyType}${csr.namedCurve ? ` ${csr.namedCurve}` : ""} is not allowed`);
  if (!keyAllowed(profile, { family, rsaBits: csr.keyBits })) {
    throw weak(family === "RSA" ? `RSA-${csr.keyBits} is not allowed (minimum ${profile.minRsaBits})` : `${family} is not allowed by profile ${profile.name}`);
  }
  if (family === "RSA") {
    const e = csr.rsaPublicExponent ?? 0n;
    if (e < 65537n || e % 2n === 0n) throw weak("RSA public exponent must be odd and at least 65537");
  }
}

export interface IssueFromCsrOptions extends CsrBinding {
  issuer: IssuingCa;
  csrPem: string | Uint8Array;
  profile: CertificateProfile;
  /** Requested lifetime; shortened to the profile maximum. */
  lifetimeSeconds?: number | undefined;
  now?: (() => number) | undefined;
  crlUrl?: string | undefined;
  ocspUrl?: string | undefined;
  /**
   * The SubjectPublicKeyInfo to certify instead of the CSR's: a key the CA made (server-side
   * key generation). The CSR still supplies the names, and its key still has to pass the profile.
   */
  spki?: Uint8Array | undefined;
}

export interface CsrIssuance extends IssuedCertificate {
  profile: string;
}

/** Parses, validates and certifies a CSR as a clientAuth leaf. Synchronous work, ~0.2 ms. */
export function issueFromCsrNow(o: IssueFromCsrOptions): CsrIssuance {
  const csr = parseCsr(o.csrPem);
  const names = validateCsr(csr, o.profile, { identity: o.identity, roles: o.roles });
  const issued = issueLeafDer({
    issuer: o.issuer,
    spki: o.spki ?? csr.spki,
    identity: names.identity,
    roles: names.roles,
    dnsNames: names.dnsNames,
    ipAddresses: names.ipAddresses,
    uris: names.uris,
    lifetimeSeconds: lifetimeFor(o.profile, o.lifetimeSeconds),
    usage: "client",
    ...(o.now && { now: o.now }),
    ...(o.crlUrl !== undefined && { crlUrl: o.crlUrl }),
    ...(o.ocspUrl !== undefined && { ocspUrl: o.ocspUrl }),
  });
  return { ...issued, profile: o.profile.name };
}

/** Async form of issueFromCsrNow (a worker pool can stand behind it without API change). */
export async function issueFromCsr(o: IssueFromCsrOptions): Promise<CsrIssuance> {
  return issueFromCsrNow(o);
}
