import { X509Certificate, type KeyObject } from "node:crypto";
import { PosternError } from "../errors.js";
import { certificateThumbprint } from "./certificate-thumbprint.js";

/**
 * Public keys of client certificates, imported once per certificate and kept in an LRU by
 * thumbprint (the keyid), so the hot path never re-parses a certificate or a PEM.
 * `get` throws on bytes that are not a DER certificate: pass only certificates the TLS
 * layer already verified. A `thumbprint` argument must be certificateThumbprint(certDer);
 * it only saves the hash.
 */
export class PublicKeyCache {
  readonly maxEntries: number;
  readonly #entries = new Map<string, KeyObject>();

  constructor(maxEntries = 1024) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new PosternError("internal", "maxEntries must be a positive integer");
    this.maxEntries = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(certDer: Uint8Array | Buffer, thumbprint: string = certificateThumbprint(certDer)): KeyObject {
    const cached = this.#entries.get(thumbprint);
    if (cached !== undefined) {
      // Re-insert to mark as most recently used (Map keeps insertion order).
      this.#entries.delete(thumbprint);
      this.#entries.set(thumbprint, cached);
      return cached;
    }
    const key = new X509Certificate(certDer).publicKey;
    this.#entries.set(thumbprint, key);
    if (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    return key;
  }
}
