import { CompactEncrypt } from "jose";
import { PosternError } from "../errors.js";
import { ROUTE_HEADER, SEAL_ENCRYPTION, SENDER_HEADER, type SealAlgorithm, type SealBinding } from "./profile.js";
import type { SealingKeySet } from "./public-jwks.js";

/**
 * Seals `plaintext` to the active key of `keys` (the first one of the JWKS): a compact JWE
 * with its `alg`, A256GCM, the key's `kid`, `cty` = the plaintext's content type, and the
 * binding (route and sender) in the protected header, which AES-GCM authenticates.
 * @throws PosternError bad-request when the key set is empty.
 */
export async function sealPayload(
  plaintext: Uint8Array,
  keys: SealingKeySet,
  binding: SealBinding,
  contentType?: string,
): Promise<{ jwe: string; kid: string; alg: SealAlgorithm }> {
  const to = keys.keys[0];
  if (!to) throw new PosternError("bad-request", "the backend publishes no encryption key");
  const jwe = await new CompactEncrypt(plaintext)
    .setProtectedHeader({
      alg: to.alg,
      enc: SEAL_ENCRYPTION,
      kid: to.kid,
      ...(contentType !== undefined ? { cty: contentType } : {}),
      [ROUTE_HEADER]: binding.route,
      [SENDER_HEADER]: binding.sender,
    })
    .encrypt(to.key);
  return { jwe, kid: to.kid, alg: to.alg };
}
