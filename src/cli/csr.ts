/**
 * What the client-side PKI commands (`enroll`, `renew`) share: the key type flag, a key made
 * here with its CSR, and key and certificate files written atomically with their modes.
 */
import { access } from "node:fs/promises";
import { PosternError } from "../errors.js";
import { writeFileAtomic } from "../storage/index.js";
import { createCsr, generateKeyPair, isKeyAlgorithm, KEY_ALGORITHMS, plainPrivateKeyPem, type KeyAlgorithm } from "../pki/index.js";
import { UsageError } from "./usage.js";

export const KEY_TYPES_TEXT = KEY_ALGORITHMS.join("|");

/** The value of a `--key-type` flag; anything but a known key type is a UsageError. */
export function parseKeyType(text: string | undefined, fallback: KeyAlgorithm = "P-256"): KeyAlgorithm {
  if (text === undefined) return fallback;
  if (!isKeyAlgorithm(text)) throw new UsageError(`--key-type must be one of ${KEY_ALGORITHMS.join(", ")}`);
  return text;
}

/**
 * A new private key (PKCS#8 PEM, unencrypted: it is written 0600) and a CSR signed with it.
 * Without `identity` the CSR names nothing and the token or the renewed certificate binds it.
 */
export async function newKeyWithCsr(algorithm: KeyAlgorithm, identity?: string): Promise<{ keyPem: string; csrPem: string }> {
  const { privateKey } = await generateKeyPair(algorithm);
  return { keyPem: plainPrivateKeyPem(privateKey), csrPem: createCsr({ privateKey, identity }) };
}

/** Writes a private key: temp file, fsync, rename, mode 0600. */
export function writeSecretFile(path: string, data: string | Uint8Array): Promise<void> {
  return writeFileAtomic(path, data, { mode: 0o600 });
}

/** Writes a certificate or CA bundle: temp file, fsync, rename, mode 0644. */
export function writePublicFile(path: string, data: string | Uint8Array): Promise<void> {
  return writeFileAtomic(path, data, { mode: 0o644 });
}

/** Refuses (`conflict`) when any of `paths` exists, so a command never replaces a key by accident. */
export async function refuseExisting(paths: readonly string[], hint: string): Promise<void> {
  for (const path of paths) {
    const found = await access(path).then(() => true, () => false);
    if (found) throw new PosternError("conflict", `${path} already exists; ${hint}`);
  }
}
