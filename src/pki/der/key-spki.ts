/**
 * SubjectPublicKeyInfo DER to a node KeyObject, quickly. Node's SPKI decoder (OpenSSL 3's
 * decoder framework) costs ~100 us per key; importing the same key as a JWK costs 4-65 us. The
 * usual forms (P-256/P-384 uncompressed, Ed25519, RSA) are taken apart here and imported as JWK,
 * so OpenSSL still validates the key (EC points are checked to be on the curve). Anything else
 * falls back to the DER decoder, so the result never depends on this shortcut.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from "node:crypto";
import { TAG, decodeBitString, decodeOid, expectChildren, readOne, type DerNode } from "./der.js";

const EC_PUBLIC_KEY = "1.2.840.10045.2.1";
const RSA_ENCRYPTION = "1.2.840.113549.1.1.1";
const ED25519 = "1.3.101.112";
const CURVES: Readonly<Record<string, { crv: string; size: number }>> = {
  "1.2.840.10045.3.1.7": { crv: "P-256", size: 32 },
  "1.3.132.0.34": { crv: "P-384", size: 48 },
};

const b64u = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64url");

/** Throws (TypeError/RangeError or node's error) when the SPKI is not a usable public key. */
export function publicKeyFromSpki(spki: Uint8Array): KeyObject {
  const jwk = jwkFromSpki(spki);
  if (jwk) return createPublicKey({ key: jwk, format: "jwk" });
  return createPublicKey({ key: Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength), format: "der", type: "spki" });
}

function jwkFromSpki(spki: Uint8Array): JsonWebKey | undefined {
  try {
    const [alg, keyNode] = expectChildren(readOne(spki, TAG.sequence), 2) as [DerNode, DerNode];
    const [algOid, params] = expectChildren(alg, 1, 2) as [DerNode, DerNode | undefined];
    const { unusedBits, bytes } = decodeBitString(keyNode);
    if (unusedBits !== 0) return undefined;
    const type = decodeOid(algOid);
    if (type === ED25519 && params === undefined && bytes.length === 32) {
      return { kty: "OKP", crv: "Ed25519", x: b64u(bytes) };
    }
    if (type === EC_PUBLIC_KEY && params?.tag === TAG.oid) {
      const curve = CURVES[decodeOid(params)];
      if (!curve || bytes.length !== 1 + 2 * curve.size || bytes[0] !== 0x04) return undefined;
      return { kty: "EC", crv: curve.crv, x: b64u(bytes.subarray(1, 1 + curve.size)), y: b64u(bytes.subarray(1 + curve.size)) };
    }
    if (type === RSA_ENCRYPTION && params?.tag === TAG.null && params.content.length === 0) {
      const [n, e] = expectChildren(readOne(bytes, TAG.sequence), 2) as [DerNode, DerNode];
      if (n.tag !== TAG.integer || e.tag !== TAG.integer) return undefined;
      const magnitude = (i: DerNode): Uint8Array | undefined => {
        const c = i.content;
        if (c.length === 0 || (c[0] as number) & 0x80) return undefined; // negative
        if (c[0] === 0 && c.length > 1 && ((c[1] as number) & 0x80) === 0) return undefined; // non-minimal
        return c[0] === 0 ? c.subarray(1) : c;
      };
      const nb = magnitude(n);
      const eb = magnitude(e);
      if (!nb || !eb) return undefined;
      return { kty: "RSA", n: b64u(nb), e: b64u(eb) };
    }
  } catch {
    // Not strict DER here: let node's decoder give the verdict.
  }
  return undefined;
}
