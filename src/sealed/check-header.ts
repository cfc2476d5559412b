/**
 * What the gateway checks on a sealed body without decrypting it: the compact JWE's shape, its
 * protected header (algorithms, a current key of the backend, an ephemeral key on that key's
 * curve) and the binding to this request's route and sender. Pure: bytes in, a verdict out,
 * never a throw on hostile input.
 */
import {
  ROUTE_HEADER,
  SEAL_ALGORITHMS,
  SEAL_ENCRYPTION,
  SENDER_HEADER,
  type SealAlgorithm,
  type SealBinding,
  type SealCurve,
  type SealedFailureCode,
} from "./profile.js";

/** A key a sealed body may name: its curve (the `epk` must be on it). */
export interface SealingKeyInfo {
  crv: SealCurve;
}

export interface SealedHeaderExpectations {
  /** The backend's current keys by kid (the active one and those still within their overlap). */
  keys: ReadonlyMap<string, SealingKeyInfo>;
  /** Allowed key management algorithms. */
  algorithms: readonly SealAlgorithm[];
  binding: SealBinding;
}

export type SealedHeaderCheck =
  | { ok: true; kid: string; alg: SealAlgorithm; header: Readonly<Record<string, unknown>> }
  | { ok: false; code: SealedFailureCode; detail: string };

/** Longest protected header accepted, in base64url characters: an epk and a few names fit in well under 1 KB. */
const MAX_HEADER_CHARS = 4096;
const BASE64URL = /^[A-Za-z0-9_-]*$/;
/** Header parameters that would make a recipient fetch or trust something else, or compress before encrypting. */
const REFUSED_PARAMETERS = ["zip", "crit", "jku", "x5u", "jwk"];
/** base64url lengths (no padding): 12-byte GCM IV, 16-byte tag, 40-byte A256KW-wrapped key, 32-byte coordinate. */
const IV_CHARS = 16;
const TAG_CHARS = 22;
const WRAPPED_KEY_CHARS = 54;
const COORDINATE_CHARS = 43;

/** Checks a sealed body's form and protected header against the backend's keys and this request. */
export function checkSealedHeader(body: Uint8Array, expect: SealedHeaderExpectations): SealedHeaderCheck {
  const fail = (code: SealedFailureCode, detail: string): SealedHeaderCheck => ({ ok: false, code, detail });
  const parts = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("latin1").trim().split(".");
  if (parts.length !== 5) return fail("sealed-invalid", "a sealed body is a JWE in compact serialization: five base64url parts");
  const [protectedPart, encryptedKey, iv, , tag] = parts as [string, string, string, string, string];
  if (protectedPart.length === 0 || protectedPart.length > MAX_HEADER_CHARS) return fail("sealed-invalid", "the protected header is empty or too long");
  if (!parts.every((part) => BASE64URL.test(part))) return fail("sealed-invalid", "a JWE part is not base64url");
  if (iv.length !== IV_CHARS || tag.length !== TAG_CHARS) return fail("sealed-invalid", "the IV or tag has the wrong length for A256GCM");
  const header = decodeHeader(protectedPart);
  if (!header) return fail("sealed-invalid", "the protected header is not a JSON object");
  const refused = REFUSED_PARAMETERS.find((name) => Object.hasOwn(header, name));
  if (refused !== undefined) return fail("sealed-invalid", `the protected header may not carry "${refused}"`);
  const { alg, enc, kid } = header;
  if (typeof alg !== "string" || !(SEAL_ALGORITHMS as readonly string[]).includes(alg) || !expect.algorithms.includes(alg as SealAlgorithm)) {
    return fail("sealed-invalid", `alg must be one of ${expect.algorithms.join(", ")}`);
  }
  if (enc !== SEAL_ENCRYPTION) return fail("sealed-invalid", `enc must be ${SEAL_ENCRYPTION}`);
  // ECDH-ES derives the content key itself; ECDH-ES+A256KW wraps a 32-byte one.
  if ((alg === "ECDH-ES" ? 0 : WRAPPED_KEY_CHARS) !== encryptedKey.length) return fail("sealed-invalid", `the encrypted key has the wrong length for ${alg}`);
  if (typeof kid !== "string") return fail("sealed-key-unknown", "the protected header names no kid");
  const key = expect.keys.get(kid);
  if (!key) return fail("sealed-key-unknown", "kid is not a current key of this backend; fetch its keys again");
  if (!isEphemeralKeyOn(header.epk, key.crv)) return fail("sealed-invalid", `epk must be a public ${key.crv} key`);
  if (header.cty !== undefined && typeof header.cty !== "string") return fail("sealed-invalid", "cty must be a string");
  if (header[ROUTE_HEADER] !== expect.binding.route) return fail("sealed-binding", `${ROUTE_HEADER} is not this request's method and path`);
  if (header[SENDER_HEADER] !== expect.binding.sender) return fail("sealed-binding", `${SENDER_HEADER} is not the TLS client certificate`);
  return { ok: true, kid, alg: alg as SealAlgorithm, header };
}

function decodeHeader(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function isEphemeralKeyOn(epk: unknown, crv: SealCurve): boolean {
  if (typeof epk !== "object" || epk === null || Array.isArray(epk)) return false;
  const k = epk as Record<string, unknown>;
  if ("d" in k || k.crv !== crv) return false;
  const coordinate = (v: unknown) => typeof v === "string" && v.length === COORDINATE_CHARS && BASE64URL.test(v);
  if (crv === "X25519") return k.kty === "OKP" && coordinate(k.x) && k.y === undefined;
  return k.kty === "EC" && coordinate(k.x) && coordinate(k.y);
}
