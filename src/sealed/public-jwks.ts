/**
 * A backend's public encryption keys as a JWKS (RFC 7517): what `postern keys backend` writes
 * to `jwks.json`, what the gateway reads from `backends.<name>.sealing.publicKeys` and serves
 * at `/.well-known/postern-backend-keys/<name>`, and what clients seal to. Public members only:
 * a document with a private member is refused, so a private key cannot end up on the gateway
 * by a copying mistake.
 */
import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { PosternError } from "../errors.js";
import { SEAL_ALGORITHMS, SEAL_CURVES, type SealAlgorithm, type SealCurve } from "./profile.js";
import type { SealingKeyInfo } from "./check-header.js";

/** One public encryption key: an X25519 (OKP) or P-256 (EC) ECDH key, kid = its RFC 7638 thumbprint. */
export interface PublicSealingJwk {
  kty: "OKP" | "EC";
  crv: SealCurve;
  x: string;
  y?: string;
  kid: string;
  use: "enc";
  alg: SealAlgorithm;
}

/**
 * The document `jwks.json` holds: the keys (the active one first) and, for retired keys, until
 * when they are still current (ms since the epoch). `currentJwks` drops those past their time.
 */
export interface SealingJwksDocument {
  keys: PublicSealingJwk[];
  publishUntil?: Record<string, number>;
}

/** A parsed key set: each key by kid, with its curve and public KeyObject. */
export interface SealingKeySet {
  /** In document order: the active key first. */
  keys: ReadonlyArray<PublicSealingJwk & { key: KeyObject }>;
  publishUntil: Readonly<Record<string, number>>;
}

/** RFC 7638 thumbprint (SHA-256, base64url) of an OKP or EC public key: its required members in lexicographic order. */
export function sealingKeyThumbprint(jwk: { kty: string; crv: string; x: string; y?: string | undefined }): string {
  const members = jwk.kty === "EC" ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return createHash("sha256").update(JSON.stringify(members)).digest("base64url");
}

/**
 * Reads a sealing JWKS. Every key must be a public X25519 or P-256 key with `use: "enc"`, an
 * `alg` of the profile and `kid` = its thumbprint (so a key cannot borrow another's kid).
 * @throws PosternError bad-request naming what is wrong.
 */
export function parseSealingJwks(document: unknown): SealingKeySet {
  const doc = document as { keys?: unknown; publishUntil?: unknown } | null;
  if (!Array.isArray(doc?.keys)) throw new PosternError("bad-request", "a JWKS needs a keys array");
  const keys = (doc.keys as unknown[]).map((value, i) => parseKey(value, i));
  if (new Set(keys.map((k) => k.kid)).size !== keys.length) throw new PosternError("bad-request", "a kid is listed twice");
  const publishUntil: Record<string, number> = {};
  if (doc.publishUntil !== undefined) {
    if (typeof doc.publishUntil !== "object" || doc.publishUntil === null) throw new PosternError("bad-request", "publishUntil must be an object");
    for (const [kid, ms] of Object.entries(doc.publishUntil)) {
      if (typeof ms !== "number" || !Number.isSafeInteger(ms)) throw new PosternError("bad-request", `publishUntil of ${kid.slice(0, 50)} is not a time`);
      publishUntil[kid] = ms;
    }
  }
  return { keys, publishUntil };
}

function parseKey(value: unknown, i: number): PublicSealingJwk & { key: KeyObject } {
  const bad = (what: string) => new PosternError("bad-request", `key ${i} of the JWKS: ${what}`);
  if (typeof value !== "object" || value === null) throw bad("not an object");
  const jwk = value as Record<string, unknown>;
  if ("d" in jwk) throw bad("holds a private key; a sealing JWKS must hold public keys only");
  if (jwk.use !== "enc") throw bad('use must be "enc"');
  if (typeof jwk.alg !== "string" || !(SEAL_ALGORITHMS as readonly string[]).includes(jwk.alg)) throw bad(`alg must be one of ${SEAL_ALGORITHMS.join(", ")}`);
  if (typeof jwk.crv !== "string" || !(SEAL_CURVES as readonly string[]).includes(jwk.crv)) throw bad(`crv must be one of ${SEAL_CURVES.join(", ")}`);
  const kty = jwk.crv === "X25519" ? "OKP" : "EC";
  if (jwk.kty !== kty || typeof jwk.x !== "string" || (kty === "EC") !== (typeof jwk.y === "string")) throw bad(`not a ${jwk.crv} public key`);
  const material = { kty, crv: jwk.crv, x: jwk.x, ...(kty === "EC" ? { y: jwk.y as string } : {}) };
  if (jwk.kid !== sealingKeyThumbprint(material)) throw bad("kid must be the key's RFC 7638 thumbprint");
  let key: KeyObject;
  try {
    key = createPublicKey({ key: material, format: "jwk" });
  } catch (cause) {
    throw bad(`not a usable key (${(cause as Error).message})`);
  }
  return { ...material, kid: jwk.kid, use: "enc", alg: jwk.alg as SealAlgorithm, key } as PublicSealingJwk & { key: KeyObject };
}

/** The keys of `set` still current at `nowMs` (the active key always), as a plain JWKS to publish. */
export function currentJwks(set: SealingKeySet, nowMs: number): { keys: PublicSealingJwk[] } {
  return {
    keys: set.keys
      .filter((k, i) => i === 0 || (set.publishUntil[k.kid] ?? Infinity) > nowMs)
      .map(({ key: _key, ...jwk }) => jwk),
  };
}

/** The kids (and curves) a sealed body may name at `nowMs`: what the gateway's header check takes. */
export function currentKeyInfo(set: SealingKeySet, nowMs: number): Map<string, SealingKeyInfo> {
  return new Map(currentJwks(set, nowMs).keys.map((k) => [k.kid, { crv: k.crv }]));
}
