import { mkdir, open, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { PosternError } from "../errors.js";
import type { MemoryReplayGuard } from "../replay/memory-guard.js";
import type { NonceClaim } from "../replay/nonce.js";
import type { AcceptedMessage, Backend, Delivery } from "./backend.js";
import { buildStreamEntry, type ForwardSigner } from "./stream-entry.js";

interface PendingLine {
  line: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * The embedded stream backend: one JSON line per message in `<dataDir>/<backend>.jsonl`,
 * fsynced before `deliver` resolves. Concurrent appends share one write and one fsync
 * (group commit). Single-process only: the nonce guard lives in this process's memory.
 */
export class FileStreamBackend implements Backend {
  readonly kind = "file-stream";
  private queue: PendingLine[] = [];
  private flushing = false;
  private sequence = 0;
  private lastMs = 0;

  private constructor(
    readonly name: string,
    readonly path: string,
    private readonly file: FileHandle,
    private readonly guard: MemoryReplayGuard,
    private readonly signer: ForwardSigner,
  ) {}

  static async open(options: {
    name: string;
    dataDir: string;
    guard: MemoryReplayGuard;
    signer: ForwardSigner;
  }): Promise<FileStreamBackend> {
    await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
    const path = join(options.dataDir, `${options.name}.jsonl`);
    const file = await open(path, "a", 0o600);
    return new FileStreamBackend(options.name, path, file, options.guard, options.signer);
  }

  async deliver(message: AcceptedMessage, claim: NonceClaim): Promise<Delivery> {
    const result = await this.guard.claim(claim, message.messageId, async () => {
      const entryId = this.nextEntryId(message.receivedAtMs);
      const fields = Object.fromEntries(
        buildStreamEntry(message, this.signer).map(([k, v]) => [k, typeof v === "string" ? v : v.toString("base64")]),
      );
      await this.append(JSON.stringify({ id: entryId, bodyEncoding: "base64", fields }) + "\n");
      return entryId;
    });
    if (result.outcome === "replayed") return { kind: "replayed" };
    const ids = { messageId: result.messageId, ...(result.entryId ? { entryId: result.entryId } : {}) };
    return result.outcome === "claimed" ? { kind: "accepted", ...ids } : { kind: "duplicate", ...ids };
  }

  /** Entry ids in Redis Stream form (`<ms>-<seq>`), increasing within this file. */
  private nextEntryId(nowMs: number): string {
    if (nowMs > this.lastMs) {
      this.lastMs = nowMs;
      this.sequence = 0;
    } else {
      this.sequence += 1;
    }
    return `${this.lastMs}-${this.sequence}`;
  }

  private append(line: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ line, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        await this.file.write(batch.map((p) => p.line).join(""));
        await this.file.sync();
        for (const p of batch) p.resolve();
      } catch (cause) {
        const error = new PosternError("backend-unavailable", "the message file could not be written", {
          cause,
          extensions: { retryAfterSeconds: 5 },
        });
        for (const p of batch) p.reject(error);
      }
    }
    this.flushing = false;
  }

  async close(): Promise<void> {
    while (this.flushing || this.queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    await this.file.close();
  }
}
