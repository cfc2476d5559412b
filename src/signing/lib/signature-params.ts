import type { Parameters } from "structured-headers";
import { fail, ok, type Result } from "./result.js";

/** The registered signature parameters (RFC 9421 §2.3), typed; others are kept in the base only. */
export interface SignatureParameters {
  created?: number;
  expires?: number;
  nonce?: string;
  keyid?: string;
  alg?: string;
  tag?: string;
}

const INTEGER_PARAMS = ["created", "expires"] as const;
const STRING_PARAMS = ["nonce", "keyid", "alg", "tag"] as const;

/** Read and type-check the parameters of one Signature-Input member: wrong types are "bad-request". */
export function readSignatureParameters(params: Parameters): Result<SignatureParameters> {
  const out: SignatureParameters = {};
  for (const name of INTEGER_PARAMS) {
    const value = params.get(name);
    if (value === undefined) continue;
    if (typeof value !== "number" || !Number.isSafeInteger(value)) {
      return fail("bad-request", `signature parameter ${name} must be an Integer`);
    }
    out[name] = value;
  }
  for (const name of STRING_PARAMS) {
    const value = params.get(name);
    if (value === undefined) continue;
    if (typeof value !== "string") return fail("bad-request", `signature parameter ${name} must be a String`);
    out[name] = value;
  }
  return ok(out);
}
