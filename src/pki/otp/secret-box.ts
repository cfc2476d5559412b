/**
 * The OTP secrets at rest: AES-256-GCM under a key derived (scrypt) from the CA passphrase,
 * the secret that already protects the CA and signing keys, so a copy of the state directory
 * without the passphrase holds no usable second factor. The identity is the associated data:
 * a sealed secret moved onto another admin's entry does not open.
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from "node:crypto";
import { PosternError } from "../../errors.js";

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** A 32-byte key from the passphrase and the file's salt (scrypt N=2^15, r=8, p=1). */
export function deriveSecretKey(passphrase: string, salt: Uint8Array): Buffer {
  return scryptSync(passphrase, salt, 32, { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
}

/** base64 of iv || tag || ciphertext. */
export function sealSecret(key: Uint8Array, secret: Uint8Array, identity: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(identity, "utf8"));
  const body = Buffer.concat([cipher.update(secret), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64");
}

/** Opens what `sealSecret` made; `internal` when the key, identity or bytes do not match. */
export function openSecret(key: Uint8Array, sealed: string, identity: string): Buffer {
  const bytes = Buffer.from(sealed, "base64");
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, bytes.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(identity, "utf8"));
    decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
  } catch (cause) {
    throw new PosternError("internal", `the one-time-code secret of ${identity} does not open with this CA passphrase`, { cause });
  }
}
