import { createPublicKey, type KeyObject } from "node:crypto";
import { PosternError } from "../errors.js";

/** The gateway's published forward-signing keys, by `kid`. */
export type GatewayKeys = ReadonlyMap<string, KeyObject>;

interface Jwk extends JsonWebKey {
  kid?: string;
}

/**
 * Reads a JWKS document (as served at `/.well-known/postern-keys`). Keys without a `kid`, and
 * private members, are refused: a consumer must never hold the gateway's private key.
 */
export function parseJwks(document: unknown): GatewayKeys {
  const keys = (document as { keys?: unknown })?.keys;
  if (!Array.isArray(keys)) throw new PosternError("bad-request", "a JWKS needs a keys array");
  const out = new Map<string, KeyObject>();
  for (const jwk of keys as Jwk[]) {
    if (typeof jwk?.kid !== "string") throw new PosternError("bad-request", "every JWKS key needs a kid");
    if ("d" in jwk) throw new PosternError("bad-request", "the JWKS holds a private key; refusing it");
    const { kid: _kid, use: _use, alg: _alg, ...material } = jwk;
    out.set(jwk.kid, createPublicKey({ key: material, format: "jwk" }));
  }
  return out;
}

/** Fetches and parses a JWKS from a URL (http/https) or reads it from a file path. */
export async function loadJwks(source: string): Promise<GatewayKeys> {
  if (/^https?:\/\//.test(source)) {
    const response = await fetch(source);
    if (!response.ok) throw new PosternError("backend-unavailable", `GET ${source} answered ${response.status}`);
    return parseJwks(await response.json());
  }
  const { readFile } = await import("node:fs/promises");
  return parseJwks(JSON.parse(await readFile(source, "utf8")));
}
