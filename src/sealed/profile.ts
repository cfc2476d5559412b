/**
 * Postern's sealed-payload profile: a JWE in compact serialization (RFC 7516) to a backend's
 * ECDH key (RFC 7518 §4.6), content encrypted with AES-256-GCM, and two private protected
 * header parameters that bind the ciphertext to where and by whom it was sent. The protected
 * header is the AEAD's additional data, so changing either one breaks decryption.
 */

/** The media type of a sealed body (RFC 7516 §9.2.1: compact serialization). */
export const SEALED_MEDIA_TYPE = "application/jose";

/** Key management algorithms a sealed body may use; the backend's configuration may allow fewer. */
export const SEAL_ALGORITHMS = ["ECDH-ES+A256KW", "ECDH-ES"] as const;
export type SealAlgorithm = (typeof SEAL_ALGORITHMS)[number];

/** The one content encryption algorithm. */
export const SEAL_ENCRYPTION = "A256GCM";

/** Curves a backend's encryption key may be on. */
export const SEAL_CURVES = ["X25519", "P-256"] as const;
export type SealCurve = (typeof SEAL_CURVES)[number];

/** Protected header parameter: the request's method and path, `POST /v1/messages/orders` (no query). */
export const ROUTE_HEADER = "postern-route";
/** Protected header parameter: the sender's certificate thumbprint (base64url SHA-256 of its DER, as the signature's keyid). */
export const SENDER_HEADER = "postern-sender";

/** The value of `postern-route` for a request. */
export function sealedRoute(method: string, path: string): string {
  return `${method.toUpperCase()} ${path}`;
}

/** Where a sealed body must go and who must have sealed it. */
export interface SealBinding {
  /** `sealedRoute(method, path)` of the request. */
  route: string;
  /** The sender's certificate thumbprint. */
  sender: string;
}

/** Why a sealed body was refused (the codes are Postern error codes). */
export type SealedFailureCode = "sealed-invalid" | "sealed-key-unknown" | "sealed-binding" | "sealed-undecryptable";
