/**
 * One name per public key, whatever its encoding: the SHA-256 of the SubjectPublicKeyInfo as
 * OpenSSL re-encodes it (a CSR may carry a compressed EC point, a certificate the uncompressed
 * one). The CA uses it to refuse certifying again a key whose certificate was revoked.
 */
import { X509Certificate, createHash } from "node:crypto";
import { publicKeyFromSpki } from "../der/index.js";

/** Hex SHA-256 of the canonical SPKI of `spki`. Throws when it is not a usable public key. */
export function keyHashOfSpki(spki: Uint8Array): string {
  const canonical = publicKeyFromSpki(spki).export({ type: "spki", format: "der" });
  return createHash("sha256").update(canonical).digest("hex");
}

/** Hex SHA-256 of the canonical SPKI of the (first) certificate in `pem`. */
export function keyHashOfCertificate(pem: string): string {
  const canonical = new X509Certificate(pem).publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(canonical).digest("hex");
}
