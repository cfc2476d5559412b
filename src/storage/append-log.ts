/**
 * All-or-nothing appends to one file. The log knows the file's committed length (every byte
 * before it was acknowledged); an append writes its whole batch there (looping on short
 * writes), makes it durable (the write itself on a file opened O_DSYNC, else an fsync), and
 * only then moves the committed length. Any failure (ENOSPC, EIO, a write that makes no
 * progress, a failed fsync) cuts the file back to the committed length,
 * so a full disk never leaves a torn line for the next append to be glued onto. When even the
 * cut fails, the log is dirty and cuts again before it writes anything else.
 */
import { dirname } from "node:path";
import type { StorageFailure } from "../metrics/index.js";
import type { StorageFile, StorageFileSystem } from "./file-system.js";
import { repairTornTail } from "./tail-scan.js";

/** A failed append or repair; nothing of the batch counts as stored. */
export class StorageWriteError extends Error {
  constructor(
    readonly failure: StorageFailure,
    readonly operation: "open" | "write" | "sync" | "truncate",
    cause?: unknown,
  ) {
    super(`storage ${operation} failed (${failure})`, { cause });
    this.name = "StorageWriteError";
  }
}

/** Sorts an error from the file system into the metric's reasons. */
export function classifyStorageFailure(error: unknown): StorageFailure {
  if (error instanceof StorageWriteError) return error.failure;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOSPC" || code === "EDQUOT") return "no_space";
  if (code === "EIO") return "io_error";
  return "other";
}

export class AppendLog {
  private committed: number;
  private dirty = false;

  private constructor(
    readonly path: string,
    private readonly file: StorageFile,
    committedBytes: number,
    /** Whether opening created the file (it held nothing before). */
    readonly created: boolean,
  ) {
    this.committed = committedBytes;
  }

  /**
   * Opens (creating) `path`, cuts a torn tail (bytes after the last "\n": a write that was
   * never acknowledged) and fsyncs; a created file's directory entry is fsynced too.
   * `onRepair` hears how many bytes were dropped. @throws StorageWriteError("open").
   */
  static async open(fs: StorageFileSystem, path: string, onRepair?: (droppedBytes: number) => void): Promise<AppendLog> {
    let opened: { file: StorageFile; created: boolean };
    try {
      opened = await fs.openFile(path);
    } catch (cause) {
      throw new StorageWriteError(classifyStorageFailure(cause), "open", cause);
    }
    try {
      const { size, droppedBytes } = await repairTornTail(opened.file);
      if (droppedBytes > 0) onRepair?.(droppedBytes);
      if (opened.created) await fs.syncDirectory(dirname(path));
      return new AppendLog(path, opened.file, size, opened.created);
    } catch (cause) {
      await opened.file.close().catch(() => undefined);
      throw new StorageWriteError(classifyStorageFailure(cause), "open", cause);
    }
  }

  /** Bytes known to be on disk and acknowledged. */
  get committedBytes(): number {
    return this.committed;
  }

  /** True while bytes past the committed length may be in the file (a cut failed). */
  get isDirty(): boolean {
    return this.dirty;
  }

  /**
   * Writes all of `data` at the committed length and fsyncs (unless the file's writes are
   * durable by themselves, O_DSYNC); resolves once it is durable.
   * @throws StorageWriteError when any step fails: then the file holds exactly its committed
   * bytes again (or the log is dirty and will cut them before the next append).
   */
  async append(data: Uint8Array): Promise<void> {
    if (this.dirty) await this.repair();
    let operation: "write" | "sync" = "write";
    try {
      for (let done = 0; done < data.length; ) {
        const n = await this.file.write(data, done, data.length - done, this.committed + done);
        // A write that takes nothing would loop forever; treat it as a failed write.
        if (!(n > 0)) throw new StorageWriteError("no_progress", "write");
        done += n;
      }
      operation = "sync";
      if (!this.file.writesAreDurable) await this.file.sync();
    } catch (cause) {
      this.dirty = true;
      await this.repair().catch(() => undefined);
      throw cause instanceof StorageWriteError ? cause : new StorageWriteError(classifyStorageFailure(cause), operation, cause);
    }
    this.committed += data.length;
  }

  /** Cuts the file back to its committed length and fsyncs. @throws StorageWriteError("truncate"); the log stays dirty. */
  async repair(): Promise<void> {
    try {
      await this.file.truncate(this.committed);
      await this.file.sync();
      this.dirty = false;
    } catch (cause) {
      this.dirty = true;
      throw new StorageWriteError(classifyStorageFailure(cause), "truncate", cause);
    }
  }

  close(): Promise<void> {
    return this.file.close();
  }
}
