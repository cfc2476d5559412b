// A Postern-profile request and keys minted at run time for sign/verify tests.
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import {
  PROFILE_COMPONENTS,
  PROFILE_PARAMETERS,
  createContentDigest,
  type HttpMessageParts,
  type SignOptions,
  type SignatureAlgorithm,
  type VerifyOptions,
} from "../../src/signing/index.js";

export const NOW_MS = 1_760_000_000_000;
export const CREATED = NOW_MS / 1000;
export const BODY = Buffer.from('{"order":42}');

export function profileRequest(extra: [string, string][] = []): HttpMessageParts {
  return {
    method: "POST",
    scheme: "https",
    authority: "gateway.example:8443",
    path: "/v1/messages/orders",
    query: "",
    headers: [
      ["Host", "gateway.example:8443"],
      ["Content-Type", "application/json"],
      ["Content-Digest", createContentDigest(BODY)],
      ["Content-Length", String(BODY.length)],
      ...extra,
    ],
  };
}

export interface TestKey {
  alg: SignatureAlgorithm;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export function mintKey(alg: SignatureAlgorithm): TestKey {
  switch (alg) {
    case "ecdsa-p256-sha256":
      return { alg, ...generateKeyPairSync("ec", { namedCurve: "P-256" }) };
    case "ecdsa-p384-sha384":
      return { alg, ...generateKeyPairSync("ec", { namedCurve: "P-384" }) };
    case "ed25519":
      return { alg, ...generateKeyPairSync("ed25519") };
    default:
      return { alg, ...generateKeyPairSync("rsa", { modulusLength: 2048 }) };
  }
}

export function signOptions(key: TestKey, overrides: Partial<SignOptions> = {}): SignOptions {
  return {
    key: key.privateKey,
    keyid: `kid-${key.alg}`,
    created: CREATED,
    nonce: "n0nce-0123456789abcdef",
    tag: "postern",
    ...overrides,
  };
}

export function verifyOptions(keys: TestKey[], overrides: Partial<VerifyOptions> = {}): VerifyOptions {
  return {
    resolveKey: (keyid) => {
      const found = keys.find((k) => `kid-${k.alg}` === keyid);
      return found && { key: found.publicKey };
    },
    now: () => NOW_MS,
    maxAgeSeconds: 300,
    clockSkewSeconds: 30,
    tag: "postern",
    requiredComponents: PROFILE_COMPONENTS,
    requiredParameters: PROFILE_PARAMETERS,
    ...overrides,
  };
}

/** `message` with signature header lines appended. */
export function withHeaders(message: HttpMessageParts, extra: [string, string][]): HttpMessageParts {
  return { ...message, headers: [...message.headers, ...extra] };
}
