import { PosternError } from "../errors.js";
import type { StorageFailure } from "../metrics/index.js";
import { classifyStorageFailure, type AppendLog } from "./append-log.js";

/** Hears how each batch ended: the storage health follows it. */
export interface CommitReporter {
  succeeded(): void;
  /** `bytes`: the size of the batch that could not be written (0 when a file could not be opened). */
  failed(failure: StorageFailure, error: unknown, bytes: number): void;
}

/** Retry-After of `storage-unavailable`: a full disk rarely clears within a second. */
export const STORAGE_RETRY_AFTER_SECONDS = 5;

/** The error every message of a failed batch gets. */
export function storageUnavailable(cause: unknown): PosternError {
  return new PosternError("storage-unavailable", "the message could not be written to disk; nothing was stored", {
    cause,
    extensions: { retryAfterSeconds: STORAGE_RETRY_AFTER_SECONDS },
  });
}

interface Pending {
  data: Buffer;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit over one AppendLog: appends that arrive while a batch is on its way are joined
 * into the next one (one write, one fsync). A batch is stored whole or not at all; when it
 * fails, every append in it rejects with `storage-unavailable` (503).
 */
export class GroupCommitLog {
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly log: AppendLog,
    private readonly reporter: CommitReporter,
    /** Called after a failed batch once nothing else is queued (the pool may retire an empty new file then). */
    private readonly onFailedIdle?: (log: AppendLog) => void,
  ) {}

  get path(): string {
    return this.log.path;
  }

  /** Nothing queued or being written, and nothing to cut: closing it now loses nothing. */
  get idle(): boolean {
    return this.queue.length === 0 && this.flushing === undefined && !this.log.isDirty;
  }

  /**
   * Queues one record; `line` is called at once, so records land in the file in the order
   * their lines were made (entry ids stay increasing). Resolves once the record is fsynced.
   * @throws PosternError storage-unavailable when its batch could not be stored.
   */
  append(line: () => string | Uint8Array): Promise<void> {
    const made = line();
    const data = typeof made === "string" ? Buffer.from(made) : Buffer.from(made.buffer, made.byteOffset, made.byteLength);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ data, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      const data = batch.length === 1 ? batch[0]!.data : Buffer.concat(batch.map((p) => p.data));
      try {
        await this.log.append(data);
      } catch (cause) {
        this.reporter.failed(classifyStorageFailure(cause), cause, data.length);
        const error = storageUnavailable(cause);
        for (const p of batch) p.reject(error);
        if (this.queue.length === 0) this.onFailedIdle?.(this.log);
        continue;
      }
      this.reporter.succeeded();
      for (const p of batch) p.resolve();
    }
    this.flushing = undefined;
  }

  /** Waits for queued records, then closes the file. */
  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    await this.log.close();
  }
}
