import { mediaTypeOf } from "./media-type.js";
import { openSealed, SEALED_MEDIA_TYPE, sealedRoute, type BackendPrivateKey, type OpenedSeal } from "../sealed/index.js";
import type { EntryVerification } from "./verify-entry.js";

/**
 * Opens the sealed body of an entry that `verifyStreamEntry` accepted: decrypts it with the
 * backend's private keys and checks that it was sealed for the request it arrived in (method
 * and path) by the client whose certificate the gateway recorded, so a body moved to another
 * route, or re-signed by another client, does not open. Verify first: only the gateway's
 * signature makes `method`, `path` and the client certificate facts.
 * Never throws on a hostile body; a plaintext entry is `sealed-invalid`.
 */
export async function openSealedEntry(
  entry: Extract<EntryVerification, { ok: true }>,
  keys: ReadonlyMap<string, BackendPrivateKey>,
): Promise<OpenedSeal> {
  if (mediaTypeOf(entry.contentType) !== SEALED_MEDIA_TYPE) {
    return { ok: false, code: "sealed-invalid", detail: `the entry is not sealed (${entry.contentType.slice(0, 60)})` };
  }
  return openSealed(entry.body, keys, { route: sealedRoute(entry.method, entry.path), sender: entry.clientCertSha256 });
}
