/**
 * Key handling for the PKI: generation, type detection, the X.509 signature algorithm that
 * goes with a CA key, and PKCS#8 encryption at rest. All cryptography is node:crypto.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair as generateKeyPairCb,
  generateKeyPairSync,
  createHash,
  KeyObject,
  type JsonWebKey,
  webcrypto,
} from "node:crypto";
import { promisify } from "node:util";
import { PosternError } from "../../errors.js";
import { DER_NULL, oid, seq } from "../der/index.js";

/** Key types the PKI issues for and signs with. RSA below 2048 bits is never generated. */
export type KeyAlgorithm = "P-256" | "P-384" | "Ed25519" | "RSA-2048" | "RSA-3072" | "RSA-4096";

export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ["P-256", "P-384", "Ed25519", "RSA-2048", "RSA-3072", "RSA-4096"];

export function isKeyAlgorithm(value: unknown): value is KeyAlgorithm {
  return typeof value === "string" && (KEY_ALGORITHMS as readonly string[]).includes(value);
}

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

const generateAsync = promisify(generateKeyPairCb);

type GenArgs =
  | ["ec", { namedCurve: string }]
  | ["ed25519", Record<string, never>]
  | ["rsa", { modulusLength: number }];

function genArgs(algorithm: KeyAlgorithm): GenArgs {
  switch (algorithm) {
    case "P-256":
      return ["ec", { namedCurve: "prime256v1" }];
    case "P-384":
      return ["ec", { namedCurve: "secp384r1" }];
    case "Ed25519":
      return ["ed25519", {}];
    case "RSA-2048":
      return ["rsa", { modulusLength: 2048 }];
    case "RSA-3072":
      return ["rsa", { modulusLength: 3072 }];
    case "RSA-4096":
      return ["rsa", { modulusLength: 4096 }];
  }
}

/** Generates a key pair off the main thread (RSA generation can take a second or more). */
export async function generateKeyPair(algorithm: KeyAlgorithm): Promise<KeyPair> {
  const [type, options] = genArgs(algorithm);
  // The overloads of promisify(generateKeyPair) do not accept a union of types.
  const gen = generateAsync as unknown as (t: string, o: object) => Promise<KeyPair>;
  return gen(type, options);
}

/** Synchronous generation, for the fast curve types during bootstrap. */
export function generateKeyPairNow(algorithm: KeyAlgorithm): KeyPair {
  const [type, options] = genArgs(algorithm);
  return (generateKeyPairSync as unknown as (t: string, o: object) => KeyPair)(type, options);
}

/** The PKI's name for a key's type and size, or undefined when the key is of no allowed kind. */
export function keyAlgorithmOf(key: KeyObject): KeyAlgorithm | undefined {
  const details = key.asymmetricKeyDetails;
  switch (key.asymmetricKeyType) {
    case "ec":
      if (details?.namedCurve === "prime256v1") return "P-256";
      if (details?.namedCurve === "secp384r1") return "P-384";
      return undefined;
    case "ed25519":
      return "Ed25519";
    case "rsa": {
      const bits = details?.modulusLength ?? 0;
      if (bits === 2048 || bits === 3072 || bits === 4096) return `RSA-${bits}` as KeyAlgorithm;
      return undefined;
    }
    default:
      return undefined;
  }
}

/** How a CA key signs an X.509 structure: the AlgorithmIdentifier DER and node's digest name. */
export interface SignatureScheme {
  algorithmIdentifier: Uint8Array;
  /** Digest for crypto.sign, null for Ed25519 (which hashes internally). */
  hash: string | null;
}

/** ECDSA with the curve's matching SHA-2, Ed25519, or RSA PKCS#1 v1.5 with SHA-256. */
export function signatureSchemeFor(key: KeyObject): SignatureScheme {
  switch (key.asymmetricKeyType) {
    case "ec":
      return key.asymmetricKeyDetails?.namedCurve === "secp384r1"
        ? { algorithmIdentifier: seq(oid("1.2.840.10045.4.3.3")), hash: "sha384" }
        : { algorithmIdentifier: seq(oid("1.2.840.10045.4.3.2")), hash: "sha256" };
    case "ed25519":
      return { algorithmIdentifier: seq(oid("1.3.101.112")), hash: null };
    case "rsa":
      return { algorithmIdentifier: seq(oid("1.2.840.113549.1.1.11"), DER_NULL), hash: "sha256" };
    default:
      throw new PosternError("internal", `unsupported CA key type ${String(key.asymmetricKeyType)}`);
  }
}

/** WebCrypto import parameters matching a key algorithm. */
export function webCryptoParams(algorithm: KeyAlgorithm): EcKeyImportParams | RsaHashedImportParams | Algorithm {
  if (algorithm === "P-256" || algorithm === "P-384") return { name: "ECDSA", namedCurve: algorithm };
  if (algorithm === "Ed25519") return { name: "Ed25519" };
  return { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
}

function algorithmOrThrow(key: KeyObject): KeyAlgorithm {
  const algorithm = keyAlgorithmOf(key);
  if (!algorithm) throw new PosternError("internal", `unsupported key type ${String(key.asymmetricKeyType)}`);
  return algorithm;
}

/** A non-extractable signing CryptoKey for a private KeyObject (Node 20 has no toCryptoKey). */
export async function toPrivateCryptoKey(key: KeyObject): Promise<CryptoKey> {
  const der = key.export({ format: "der", type: "pkcs8" });
  return webcrypto.subtle.importKey("pkcs8", new Uint8Array(der), webCryptoParams(algorithmOrThrow(key)), false, ["sign"]);
}

/** SubjectPublicKeyInfo DER of a public key given as KeyObject or CryptoKey. */
export function spkiOf(key: KeyObject | CryptoKey): Uint8Array {
  const object = key instanceof KeyObject ? key : KeyObject.from(key);
  const pub = object.type === "private" ? createPublicKey(object) : object;
  return new Uint8Array(pub.export({ format: "der", type: "spki" }));
}

/** PKCS#8 PEM encrypted with AES-256-CBC under a PBKDF2-derived key (PBES2). */
export function encryptPrivateKeyPem(key: KeyObject, passphrase: string): string {
  return key.export({ format: "pem", type: "pkcs8", cipher: "aes-256-cbc", passphrase }) as string;
}

export function plainPrivateKeyPem(key: KeyObject): string {
  return key.export({ format: "pem", type: "pkcs8" }) as string;
}

/**
 * Reads an encrypted PKCS#8 PEM. A wrong passphrase (or a damaged file) is reported as
 * `internal` naming the file, never echoing the passphrase.
 */
export function decryptPrivateKeyPem(pem: string, passphrase: string, label: string): KeyObject {
  try {
    return createPrivateKey({ key: pem, format: "pem", passphrase });
  } catch (cause) {
    throw new PosternError("internal", `cannot decrypt ${label}: wrong CA passphrase or damaged key file`, { cause });
  }
}

/** RFC 7638 JWK thumbprint (SHA-256, base64url) of a public key. */
export function jwkThumbprint(jwk: JsonWebKey): string {
  let members: Record<string, unknown>;
  if (jwk.kty === "OKP") members = { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  else if (jwk.kty === "EC") members = { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  else if (jwk.kty === "RSA") members = { e: jwk.e, kty: jwk.kty, n: jwk.n };
  else throw new PosternError("internal", `no thumbprint for kty ${String(jwk.kty)}`);
  return createHash("sha256").update(JSON.stringify(members)).digest("base64url");
}
