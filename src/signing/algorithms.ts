/**
 * HTTP Message Signature algorithms (RFC 9421 §3.3, IANA "HTTP Signature Algorithms").
 * Only the six registered algorithms exist here; anything else is refused by name.
 */
export type SignatureAlgorithm =
  | "ecdsa-p256-sha256"
  | "ecdsa-p384-sha384"
  | "ed25519"
  | "rsa-pss-sha512"
  | "rsa-v1_5-sha256"
  | "hmac-sha256";

/** Every algorithm this module can sign and verify with. */
export const SIGNATURE_ALGORITHMS: readonly SignatureAlgorithm[] = Object.freeze([
  "ecdsa-p256-sha256",
  "ecdsa-p384-sha384",
  "ed25519",
  "rsa-pss-sha512",
  "rsa-v1_5-sha256",
  "hmac-sha256",
] as const);

/**
 * Algorithms clients may use (never hmac, never rsa-v1_5). This is the default allow-list
 * of `verifyMessage`: a shared secret or PKCS#1 v1.5 signature is refused unless a caller
 * opts in explicitly.
 */
export const CLIENT_ALGORITHMS: readonly SignatureAlgorithm[] = Object.freeze([
  "ecdsa-p256-sha256",
  "ecdsa-p384-sha384",
  "ed25519",
  "rsa-pss-sha512",
] as const);

/** True when `value` names one of the six registered algorithms (exact, case-sensitive). */
export function isSignatureAlgorithm(value: unknown): value is SignatureAlgorithm {
  return typeof value === "string" && (SIGNATURE_ALGORITHMS as readonly string[]).includes(value);
}
