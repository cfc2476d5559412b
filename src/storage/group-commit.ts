import { PosternError } from "../errors.js";
import type { StorageFailure } from "../metrics/index.js";
import { classifyStorageFailure, type AppendLog } from "./append-log.js";
import type { StorageFileSystem } from "./file-system.js";
import { applyRetention, rotateFile, rotationDue, type RotationPolicy } from "./rotation.js";

/** How a GroupCommitLog rotates its file (see rotation.ts). */
export interface GroupRotation {
  policy: RotationPolicy;
  fs: StorageFileSystem;
  /** Opens (creating) the file at the log's path again: after a rotation, the new one. */
  reopen: () => Promise<AppendLog>;
  /** When the current file's first line was written (undefined for an empty file). */
  startedAtMs: number | undefined;
  /** Hears each rotation: the rotated file and what retention removed; or a rotation that failed (writing went on in the same file). */
  onRotated: (event: { rotatedPath: string; removed: string[] } | { error: unknown }) => void;
}

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
  /** A line as made: encoded with its batch, one copy for all of them. */
  data: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit over one AppendLog: appends that arrive while a batch is on its way are joined
 * into the next one (one durable write). A batch is stored whole or not at all; when it
 * fails, every append in it rejects with `storage-unavailable` (503).
 */
export class GroupCommitLog {
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private retaining: Promise<void> = Promise.resolve();
  /** Undefined between a rotation and a successful reopen. */
  private log: AppendLog | undefined;
  readonly path: string;

  constructor(
    log: AppendLog,
    private readonly reporter: CommitReporter,
    /** Called after a failed batch once nothing else is queued (the pool may retire an empty new file then). */
    private readonly onFailedIdle?: (log: AppendLog) => void,
    /** Size and age rotation; none by default. */
    private readonly rotation?: GroupRotation,
  ) {
    this.log = log;
    this.path = log.path;
  }

  /** Nothing queued or being written, and nothing to cut: closing it now loses nothing. */
  get idle(): boolean {
    return this.queue.length === 0 && this.flushing === undefined && !this.log?.isDirty;
  }

  /**
   * Queues one record; `line` is called at once, so records land in the file in the order
   * their lines were made (entry ids stay increasing). Resolves once the record is durable.
   * @throws PosternError storage-unavailable when its batch could not be stored.
   */
  append(line: () => string): Promise<void> {
    const data = line();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ data, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      const data = Buffer.from(batch.map((p) => p.data).join(""));
      try {
        await this.rotateIfDue();
        this.log ??= await this.rotation!.reopen();
        await this.log.append(data);
        if (this.rotation) this.rotation.startedAtMs ??= this.rotation.policy.now();
      } catch (cause) {
        this.reporter.failed(classifyStorageFailure(cause), cause, data.length);
        const error = storageUnavailable(cause);
        for (const p of batch) p.reject(error);
        if (this.queue.length === 0 && this.log) this.onFailedIdle?.(this.log);
        continue;
      }
      this.reporter.succeeded();
      for (const p of batch) p.resolve();
    }
    this.flushing = undefined;
  }

  /**
   * Between batches: renames a full or old file aside and opens a new one, so no line is ever
   * split across files. A failed rename keeps writing to the same file (rotation is retried
   * before the next batch); only a failed reopen fails the batch (storage-unavailable).
   */
  private async rotateIfDue(): Promise<void> {
    const rotation = this.rotation;
    const log = this.log;
    if (!rotation || !log || log.isDirty || !rotationDue(rotation.policy, log.committedBytes, rotation.startedAtMs)) return;
    this.log = undefined;
    await log.close().catch(() => undefined);
    let rotatedPath: string;
    try {
      rotatedPath = (await rotateFile(rotation.fs, this.path)).path;
    } catch (error) {
      rotation.onRotated({ error });
      return;
    }
    rotation.startedAtMs = undefined;
    // Retention reads and removes only rotated files, never the one being written: it need not
    // hold up the batch. One pass at a time, so two never race over the same file.
    this.retaining = this.retaining.then(() =>
      applyRetention(rotation.fs, this.path, rotation.policy).then(
        (removed) => rotation.onRotated({ rotatedPath, removed }),
        (error: unknown) => rotation.onRotated({ error }),
      ),
    );
  }

  /** Waits for queued records, then closes the file. */
  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    await this.retaining;
    await this.log?.close();
  }
}
