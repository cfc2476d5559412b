import { type MemoryReplayGuard, claimRecord, type NonceClaim } from "../replay/index.js";
import type { AcceptedMessage, Backend, Delivery } from "./backend.js";
import { buildStreamEntry, type ForwardSigner } from "./stream-entry.js";
import type { StreamFileSet } from "./stream-files.js";
import { storedEntryLine } from "./stored-entry.js";
import type { StreamNameTemplate } from "./stream-template.js";

export interface FileStreamBackendOptions {
  name: string;
  /** The compiled `config.stream`: a fixed name or a template. */
  template: StreamNameTemplate;
  /** Distinct stream names a template may create (`backends.<name>.maxStreams`). */
  maxStreams: number;
  files: StreamFileSet;
  guard: MemoryReplayGuard;
  signer: ForwardSigner;
}

/**
 * The embedded stream backend: one JSON line per message (see stored-entry.ts), in
 * `<dataDir>/<backend>.jsonl` or, for a templated stream name, `<dataDir>/<backend>/<stream>.jsonl`.
 * The nonce claim and the message are one line, one write, one fsync, before `deliver`
 * resolves; concurrent messages share that write and fsync (group commit). A batch that
 * cannot be stored whole is rolled back and every message in it gets `storage-unavailable`
 * (503) with its nonce given back, so the same signed request may be retried. The file is
 * opened only after the nonce is claimed: a duplicate, a replay or a refused name creates
 * nothing. Single-process only: the guard lives in this process's memory, rebuilt from the
 * files at start.
 */
export class FileStreamBackend implements Backend {
  readonly kind = "file-stream";
  readonly name: string;

  constructor(private readonly options: FileStreamBackendOptions) {
    this.name = options.name;
  }

  async deliver(message: AcceptedMessage, claim: NonceClaim): Promise<Delivery> {
    const { template, maxStreams, files, guard, signer } = this.options;
    // Resolved before the claim: a bad parameter spends no nonce.
    const stream = template.resolve(message.route, message.params);
    const result = await guard.claim(claim, message.messageId, () => {
      const fields = Object.fromEntries(
        buildStreamEntry(message, signer).map(([k, v]) => [k, typeof v === "string" ? v : v.toString("base64")]),
      );
      const record = claimRecord(claim, message.messageId);
      return files.append(stream, maxStreams, message.receivedAtMs, (entryId) => storedEntryLine(entryId, fields, record));
    });
    if (result.outcome === "replayed") return { kind: "replayed" };
    const ids = { messageId: result.messageId, ...(result.entryId ? { entryId: result.entryId } : {}) };
    return result.outcome === "claimed" ? { kind: "accepted", ...ids } : { kind: "duplicate", ...ids };
  }

  /** The files belong to the shared StreamFiles, which outlives config reloads: nothing to close here. */
  async close(): Promise<void> {}
}
