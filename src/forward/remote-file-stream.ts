import type { NonceClaim } from "../replay/index.js";
import type { AcceptedMessage, Backend, Delivery } from "./backend.js";
import { type PreparedEntry, storedFields } from "./file-stream.js";
import type { ForwardSigner } from "./stream-entry.js";
import type { StreamNameTemplate } from "./stream-template.js";

export interface RemoteFileStreamBackendOptions {
  name: string;
  template: StreamNameTemplate;
  signer: ForwardSigner;
  /**
   * Hands the signed entry to the process that owns the backend's files and nonce set (the
   * cluster primary's `FileStreamBackend.store`); resolves once it is fsynced there.
   */
  store: (backend: string, entry: PreparedEntry) => Promise<Delivery>;
}

/**
 * An embedded stream backend as a cluster worker sees it: the stream name is resolved and the
 * entry signed here, in the worker's own process, and the nonce claim and the append happen in
 * the one process that writes the files, so two workers can neither both accept one nonce nor
 * interleave writes to a file. Errors (storage-unavailable, stream-limit) come back as they
 * were thrown there.
 */
export class RemoteFileStreamBackend implements Backend {
  readonly kind = "file-stream";
  readonly name: string;

  constructor(private readonly options: RemoteFileStreamBackendOptions) {
    this.name = options.name;
  }

  deliver(message: AcceptedMessage, claim: NonceClaim): Promise<Delivery> {
    const { template, signer, store } = this.options;
    const stream = template.resolve(message.route, message.params);
    return store(this.name, { stream, claim, messageId: message.messageId, receivedAtMs: message.receivedAtMs, fields: storedFields(message, signer) });
  }

  async close(): Promise<void> {}
}
