import { compactDecrypt } from "jose";
import { checkSealedHeader } from "./check-header.js";
import { SEAL_ALGORITHMS, SEAL_ENCRYPTION, type SealAlgorithm, type SealBinding, type SealedFailureCode } from "./profile.js";
import type { BackendPrivateKey } from "./key-ring.js";

export type OpenedSeal =
  | { ok: true; plaintext: Buffer; kid: string; alg: SealAlgorithm; contentType: string | undefined }
  | { ok: false; code: SealedFailureCode; detail: string };

/**
 * Opens a sealed body with the backend's private keys: the header is checked as the gateway
 * checks it (a key of `keys`, the binding to `binding`), then jose decrypts with exactly the
 * header's algorithm and A256GCM. Never throws on a hostile body: a failed decryption (another
 * key, a changed byte, a changed header) is `sealed-undecryptable`.
 */
export async function openSealed(
  body: Uint8Array,
  keys: ReadonlyMap<string, BackendPrivateKey>,
  binding: SealBinding,
  algorithms: readonly SealAlgorithm[] = SEAL_ALGORITHMS,
): Promise<OpenedSeal> {
  const checked = checkSealedHeader(body, { keys, algorithms, binding });
  if (!checked.ok) return checked;
  try {
    const { plaintext } = await compactDecrypt(Buffer.from(body).toString("latin1").trim(), keys.get(checked.kid)!.key, {
      keyManagementAlgorithms: [checked.alg],
      contentEncryptionAlgorithms: [SEAL_ENCRYPTION],
    });
    const cty = checked.header.cty;
    return { ok: true, plaintext: Buffer.from(plaintext), kid: checked.kid, alg: checked.alg, contentType: typeof cty === "string" ? cty : undefined };
  } catch (error) {
    return { ok: false, code: "sealed-undecryptable", detail: `the sealed body does not decrypt with key ${checked.kid} (${(error as Error).name})` };
  }
}
