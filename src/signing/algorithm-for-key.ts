import type { KeyObject } from "node:crypto";
import type { SignatureAlgorithm } from "./algorithms.js";

/**
 * The algorithm a key implies: EC P-256 -> ecdsa-p256-sha256, P-384 -> ecdsa-p384-sha384,
 * Ed25519 -> ed25519, RSA and RSA-PSS -> rsa-pss-sha512 (never v1.5 by default), secret ->
 * hmac-sha256. Undefined for any other key (other curves, Ed448, DSA, X25519): such a key is
 * refused rather than guessed at.
 */
export function algorithmForKey(key: KeyObject): SignatureAlgorithm | undefined {
  if (key.type === "secret") return "hmac-sha256";
  switch (key.asymmetricKeyType) {
    case "ec": {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === "prime256v1") return "ecdsa-p256-sha256";
      if (curve === "secp384r1") return "ecdsa-p384-sha384";
      return undefined;
    }
    case "ed25519":
      return "ed25519";
    case "rsa":
    case "rsa-pss":
      return "rsa-pss-sha512";
    default:
      return undefined;
  }
}

/** RSA keys shorter than this are refused for every RSA algorithm. */
export const MIN_RSA_MODULUS_BITS = 2048;

/**
 * True when `key` can sign or verify with `alg`: the key type and curve must fit, RSA keys
 * need at least MIN_RSA_MODULUS_BITS, an RSA-PSS key restricted to other hashes or a longer
 * salt does not fit rsa-pss-sha512, and v1.5 needs a plain RSA key.
 */
export function keyMatchesAlgorithm(key: KeyObject, alg: SignatureAlgorithm): boolean {
  switch (alg) {
    case "hmac-sha256":
      return key.type === "secret";
    case "ecdsa-p256-sha256":
    case "ecdsa-p384-sha384":
    case "ed25519":
      return key.type !== "secret" && algorithmForKey(key) === alg;
    case "rsa-v1_5-sha256":
      return key.asymmetricKeyType === "rsa" && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= MIN_RSA_MODULUS_BITS;
    case "rsa-pss-sha512": {
      const details = key.asymmetricKeyDetails;
      if ((details?.modulusLength ?? 0) < MIN_RSA_MODULUS_BITS) return false;
      if (key.asymmetricKeyType === "rsa") return true;
      if (key.asymmetricKeyType !== "rsa-pss") return false;
      const hashOk = (name: string | undefined) => name === undefined || name === "sha512" || name === "sha-512";
      return (
        hashOk(details?.hashAlgorithm) &&
        hashOk(details?.mgf1HashAlgorithm) &&
        (details?.saltLength === undefined || details.saltLength <= 64)
      );
    }
  }
}
