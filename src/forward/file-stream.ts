import { type MemoryReplayGuard, claimRecord, type NonceClaim } from "../replay/index.js";
import type { AcceptedMessage, Backend, Delivery } from "./backend.js";
import { buildStreamEntry, type ForwardSigner } from "./stream-entry.js";
import type { StreamFileSet } from "./stream-files.js";
import { storedEntryLine } from "./stored-entry.js";
import type { StreamNameTemplate } from "./stream-template.js";

/** A signed stream entry on its way to a file: where it goes, its claim, and its fields (bytes as base64). */
export interface PreparedEntry {
  stream: string;
  claim: NonceClaim;
  messageId: string;
  receivedAtMs: number;
  fields: Record<string, string>;
}

/** The fields of a message's stored entry, signed by the gateway; bytes as base64. */
export function storedFields(message: AcceptedMessage, signer: ForwardSigner): Record<string, string> {
  return Object.fromEntries(buildStreamEntry(message, signer).map(([k, v]) => [k, typeof v === "string" ? v : v.toString("base64")]));
}

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
 * The nonce claim and the message are one line, one durable write, before `deliver`
 * resolves; concurrent messages share that write (group commit). A batch that
 * cannot be stored whole is rolled back and every message in it gets `storage-unavailable`
 * (503) with its nonce given back, so the same signed request may be retried. The file is
 * opened only after the nonce is claimed: a duplicate, a replay or a refused name creates
 * nothing. Single-process only: the guard lives in this process's memory, rebuilt from the
 * files at start; cluster workers reach it through `RemoteFileStreamBackend` and `store`.
 */
export class FileStreamBackend implements Backend {
  readonly kind = "file-stream";
  readonly name: string;

  constructor(private readonly options: FileStreamBackendOptions) {
    this.name = options.name;
  }

  async deliver(message: AcceptedMessage, claim: NonceClaim): Promise<Delivery> {
    // Resolved before the claim: a bad parameter spends no nonce.
    const stream = this.options.template.resolve(message.route, message.params);
    return this.store({ stream, claim, messageId: message.messageId, receivedAtMs: message.receivedAtMs, fields: storedFields(message, this.options.signer) });
  }

  /**
   * Claims the nonce and appends the prepared entry as one step (what `deliver` does once the
   * entry is signed): cluster workers sign in their own process and hand the result to the
   * primary, the one process that holds the nonce set and writes the files.
   */
  async store(entry: PreparedEntry): Promise<Delivery> {
    const { maxStreams, files, guard } = this.options;
    const { stream, claim, messageId, receivedAtMs, fields } = entry;
    const result = await guard.claim(claim, messageId, () => {
      const record = claimRecord(claim, messageId);
      return files.append(stream, maxStreams, receivedAtMs, (entryId) => storedEntryLine(entryId, fields, record));
    });
    if (result.outcome === "replayed") return { kind: "replayed" };
    const ids = { messageId: result.messageId, ...(result.entryId ? { entryId: result.entryId } : {}) };
    return result.outcome === "claimed" ? { kind: "accepted", ...ids } : { kind: "duplicate", ...ids };
  }

  /** The files belong to the shared StreamFiles, which outlives config reloads: nothing to close here. */
  async close(): Promise<void> {}
}
