/**
 * What the client-side PKI commands (`enroll`, `renew`) share: the key type flag, a key made
 * here with its CSR, and key and certificate files written atomically with their modes.
 */
import { createPrivateKey } from "node:crypto";
import { access } from "node:fs/promises";
import { KEY_TYPES } from "../client/index.js";
import { PosternError } from "../errors.js";
import type { KeyAlgorithm } from "../pki/index.js";
import { writeFileAtomic } from "../storage/index.js";
import { UsageError } from "./usage.js";

export const KEY_TYPES_TEXT = KEY_TYPES.join("|");

/** The value of a `--key-type` flag; anything but a known key type is a UsageError. */
export function parseKeyType(text: string | undefined, fallback: KeyAlgorithm = "P-256"): KeyAlgorithm {
  if (text === undefined) return fallback;
  if (!(KEY_TYPES as readonly string[]).includes(text)) throw new UsageError(`--key-type must be one of ${KEY_TYPES.join(", ")}`);
  return text as KeyAlgorithm;
}

/**
 * A new private key (PKCS#8 PEM, unencrypted: it is written 0600) and a CSR signed with it.
 * Without `identity` the CSR names nothing and the token or the renewed certificate binds it.
 * The PKI's code is loaded here, when a key is made: commands that only call the admin API
 * start without it (about half a second).
 */
export async function newKeyWithCsr(algorithm: KeyAlgorithm, identity?: string): Promise<{ keyPem: string; csrPem: string }> {
  const { createCsr, generateKeyPair, plainPrivateKeyPem } = await import("../pki/index.js");
  const { privateKey } = await generateKeyPair(algorithm);
  return { keyPem: plainPrivateKeyPem(privateKey), csrPem: createCsr({ privateKey, identity }) };
}

/** The key type of a private key (PEM), to make its successor alike; P-256 for one the PKI would not make. */
export async function keyTypeOf(keyPem: string): Promise<KeyAlgorithm> {
  const { keyAlgorithmOf } = await import("../pki/index.js");
  return keyAlgorithmOf(createPrivateKey(keyPem)) ?? "P-256";
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
