import { oid, seq, set, uint, type Bytes } from "../der/index.js";
import type { CertificateProfile } from "./profile.js";
import { OID } from "./tbs.js";

const ID_EC_PUBLIC_KEY = "1.2.840.10045.2.1";
const CURVES = { "P-256": "1.2.840.10045.3.1.7", "P-384": "1.3.132.0.34" } as const;
const RSA_ENCRYPTION = "1.2.840.113549.1.1.1";
const ID_ED25519 = "1.3.101.112";
const URI_PATTERN = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//;

/**
 * What a profile asks of a CSR, as the DER `CsrAttrs` of EST's /csrattrs (RFC 7030 §4.5.2, with
 * the key-type conventions of RFC 9908): one attribute per allowed key family (id-ecPublicKey
 * with the allowed curves, rsaEncryption with the minimum modulus size) or the bare OID of
 * Ed25519, and the bare OID of subjectAltName when the profile's identities are URIs (they go
 * in a URI SAN). Advice only: the enrollment checks stay the authority.
 */
export function csrAttributes(profile: CertificateProfile): Bytes {
  const items: Bytes[] = [];
  const curves = profile.allowedKeyTypes.filter((k): k is keyof typeof CURVES => k in CURVES);
  if (curves.length > 0) items.push(seq(oid(ID_EC_PUBLIC_KEY), set(...curves.map((c) => oid(CURVES[c])))));
  if (profile.allowedKeyTypes.includes("RSA")) items.push(seq(oid(RSA_ENCRYPTION), set(uint(profile.minRsaBits))));
  if (profile.allowedKeyTypes.includes("Ed25519")) items.push(oid(ID_ED25519));
  if (profile.allowedIdentityPatterns.every((p) => URI_PATTERN.test(p))) items.push(oid(OID.subjectAltName));
  return seq(...items);
}
