import { createHash } from "node:crypto";

/**
 * base64url (no padding) SHA-256 of a certificate's DER: JOSE `x5t#S256`, Postern's keyid.
 * Binding the keyid to the TLS client certificate means a signature cannot be replayed over
 * another client's connection.
 */
export function certificateThumbprint(certDer: Uint8Array): string {
  return createHash("sha256").update(certDer).digest("base64url");
}
