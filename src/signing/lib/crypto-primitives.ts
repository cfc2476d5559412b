import {
  constants,
  createHmac,
  sign,
  timingSafeEqual,
  verify,
  type KeyObject,
  type SignKeyObjectInput,
  type VerifyKeyObjectInput,
} from "node:crypto";
import type { SignatureAlgorithm } from "../algorithms.js";

type KeyInput = SignKeyObjectInput & VerifyKeyObjectInput;

/** Digest and options of each asymmetric algorithm (RFC 9421 §3.3). */
function asymmetric(alg: Exclude<SignatureAlgorithm, "hmac-sha256">, key: KeyObject): [string | null, KeyInput] {
  switch (alg) {
    case "ecdsa-p256-sha256":
      return ["sha256", { key, dsaEncoding: "ieee-p1363" }];
    case "ecdsa-p384-sha384":
      return ["sha384", { key, dsaEncoding: "ieee-p1363" }];
    case "ed25519":
      return [null, { key }];
    case "rsa-pss-sha512":
      // MGF1 uses the signature digest (SHA-512) in node:crypto; salt length 64 per the RFC.
      return ["sha512", { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 64 }];
    case "rsa-v1_5-sha256":
      return ["sha256", { key, padding: constants.RSA_PKCS1_PADDING }];
  }
}

/** HTTP_SIGN: sign `base` with `alg`. Throws only on a key that cannot sign (caller's error). */
export function signBase(alg: SignatureAlgorithm, key: KeyObject, base: Buffer): Buffer {
  if (alg === "hmac-sha256") return createHmac("sha256", key).update(base).digest();
  const [digest, input] = asymmetric(alg, key);
  return sign(digest, base, input);
}

/** HTTP_VERIFY: true only for a valid signature; never throws (a bad key or value is false). */
export function verifyBase(alg: SignatureAlgorithm, key: KeyObject, base: Buffer, signature: Uint8Array): boolean {
  try {
    if (alg === "hmac-sha256") {
      const expected = createHmac("sha256", key).update(base).digest();
      return expected.length === signature.length && timingSafeEqual(expected, signature);
    }
    const [digest, input] = asymmetric(alg, key);
    return verify(digest, base, input, signature);
  } catch {
    return false;
  }
}
