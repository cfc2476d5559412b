import { join } from "node:path";
import { PosternError } from "../errors.js";
import type { MemoryReplayGuard } from "../replay/memory-guard.js";
import type { NonceClaim } from "../replay/nonce.js";
import type { AcceptedMessage, Backend, Delivery } from "./backend.js";
import { FileStreamBackend } from "./file-stream.js";
import type { ForwardSigner } from "./stream-entry.js";
import type { StreamNameTemplate } from "./stream-template.js";

/** Open files per backend; a template fed by client path parameters must not exhaust descriptors. */
export const MAX_STREAM_FILES = 256;

/**
 * Embedded mode's backend for a templated stream name: one JSON-lines file per resolved name,
 * `<dataDir>/<backend>/<stream>.jsonl`, each a FileStreamBackend (fsync before 202), opened
 * on first use. Fails closed past MAX_STREAM_FILES names (503 backend-unavailable). Trimming,
 * consumer groups and backpressure are Redis-mode features; files are not bounded here.
 */
export class TemplatedFileStreamBackend implements Backend {
  readonly kind = "file-stream";
  private readonly files = new Map<string, Promise<FileStreamBackend>>();

  constructor(
    readonly name: string,
    private readonly options: {
      dataDir: string;
      template: StreamNameTemplate;
      guard: MemoryReplayGuard;
      signer: ForwardSigner;
      /** Default MAX_STREAM_FILES. */
      maxFiles?: number;
    },
  ) {}

  async deliver(message: AcceptedMessage, claim: NonceClaim): Promise<Delivery> {
    const stream = this.options.template.resolve(message.route, message.params);
    return (await this.file(stream)).deliver(message, claim);
  }

  private file(stream: string): Promise<FileStreamBackend> {
    const open = this.files.get(stream);
    if (open) return open;
    const maxFiles = this.options.maxFiles ?? MAX_STREAM_FILES;
    if (this.files.size >= maxFiles) {
      throw new PosternError("backend-unavailable", `backend ${this.name} holds ${maxFiles} stream files, its limit`);
    }
    const { dataDir, guard, signer } = this.options;
    const opening = FileStreamBackend.open({ name: stream, dataDir: join(dataDir, this.name), guard, signer }).catch((cause: unknown) => {
      this.files.delete(stream);
      throw new PosternError("backend-unavailable", "the message file could not be opened", { cause, extensions: { retryAfterSeconds: 5 } });
    });
    this.files.set(stream, opening);
    return opening;
  }

  async close(): Promise<void> {
    const files = await Promise.allSettled(this.files.values());
    await Promise.all(files.flatMap((f) => (f.status === "fulfilled" ? [f.value.close()] : [])));
  }
}
