import type { Logger } from "../log.js";
import { AppendLog, classifyStorageFailure } from "./append-log.js";
import type { StorageFileSystem } from "./file-system.js";
import { GroupCommitLog, storageUnavailable, type CommitReporter, type GroupRotation } from "./group-commit.js";
import { firstLineTimeMs, type RotationPolicy } from "./rotation.js";

/** Idle files kept open by default; more are opened on demand and the least recently used idle ones closed. */
export const DEFAULT_MAX_OPEN_FILES = 64;

export interface LogPoolOptions {
  fs: StorageFileSystem;
  reporter: CommitReporter;
  log: Logger;
  /** Default DEFAULT_MAX_OPEN_FILES. */
  maxOpenFiles?: number;
}

interface Entry {
  opening: Promise<GroupCommitLog>;
  /** Set once opened. */
  log?: GroupCommitLog;
  /** Appends between asking for the file and queueing their record: the file must stay open for them. */
  users: number;
}

/**
 * Every append-only file of embedded storage, opened on first use and shared by everyone who
 * writes to it (one writer per file, whatever config generation asks). File descriptors stay
 * bounded: past `maxOpenFiles`, the least recently used idle files are closed; a file with
 * records queued or a cut pending is never closed, so at most `maxOpenFiles` plus the files
 * being written at that moment are open. A file created for a batch that then failed is
 * removed again, so a refused message leaves no file behind.
 */
export class LogPool {
  /** In least recently used order. */
  private readonly entries = new Map<string, Entry>();
  /** Files being closed and removed: a new open of the same path waits for it. */
  private readonly retiring = new Map<string, Promise<void>>();
  private readonly maxOpenFiles: number;
  private closed = false;

  constructor(private readonly options: LogPoolOptions) {
    this.maxOpenFiles = options.maxOpenFiles ?? DEFAULT_MAX_OPEN_FILES;
  }

  /** Files open (or opening) now. */
  get openFiles(): number {
    return this.entries.size;
  }

  /**
   * Appends one record to `path`, opening or creating the file first; resolves once it is
   * durable. `line` is called when the record is queued (see GroupCommitLog.append).
   * `rotation`, taken when the file is opened, rotates it by size and age (see rotation.ts).
   * @throws PosternError storage-unavailable when it could not be stored.
   */
  async append(path: string, line: () => string, rotation?: RotationPolicy): Promise<void> {
    if (this.closed) throw storageUnavailable(new Error("storage is closed"));
    let entry = this.entries.get(path);
    if (entry) {
      this.entries.delete(path);
    } else {
      const opening = this.openLog(path, rotation);
      const created: Entry = { opening, users: 0 };
      opening.then(
        (log) => void (created.log = log),
        () => this.entries.get(path) === created && this.entries.delete(path),
      );
      entry = created;
    }
    this.entries.set(path, entry);
    entry.users += 1;
    let log: GroupCommitLog;
    try {
      log = await entry.opening;
    } finally {
      entry.users -= 1;
    }
    const appended = log.append(line);
    this.evictIdle();
    return appended;
  }

  private async openLog(path: string, policy: RotationPolicy | undefined): Promise<GroupCommitLog> {
    await this.retiring.get(path);
    const { fs, reporter, log } = this.options;
    const open = () => AppendLog.open(fs, path, (droppedBytes) => log.warn("cut a torn last line (an append that was never acknowledged)", { path, droppedBytes }));
    let opened: AppendLog;
    let startedAtMs: number | undefined;
    try {
      opened = await open();
      if (policy && opened.committedBytes > 0) startedAtMs = (await firstLineTimeMs(fs, path, policy.lineTimeMs)) ?? policy.now();
    } catch (cause) {
      reporter.failed(classifyStorageFailure(cause), cause, 0);
      throw storageUnavailable(cause);
    }
    const rotation: GroupRotation | undefined = policy && {
      policy,
      fs,
      reopen: open,
      startedAtMs,
      onRotated: (event) => {
        if ("error" in event) log.warn("rotating a file failed; writing goes on in the same file", { path, error: String(event.error) });
        else log.info("file rotated", { path, rotatedTo: event.rotatedPath, ...(event.removed.length > 0 ? { removedByRetention: event.removed } : {}) });
      },
    };
    const group: GroupCommitLog = new GroupCommitLog(
      opened,
      reporter,
      (failed) => {
        if (failed.created && failed.committedBytes === 0) this.retire(path, group);
      },
      rotation,
    );
    return group;
  }

  /** Closes and removes a file this pool created whose only batches failed, unless someone is about to write to it. */
  private retire(path: string, group: GroupCommitLog): void {
    const entry = this.entries.get(path);
    if (entry?.log !== group || entry.users > 0) return;
    this.entries.delete(path);
    const done = (async () => {
      await group.close().catch(() => undefined);
      await this.options.fs.remove(path).catch(() => undefined);
    })();
    this.retiring.set(path, done);
    void done.then(() => this.retiring.get(path) === done && this.retiring.delete(path));
  }

  /** Closes least recently used idle files while more than maxOpenFiles are open. */
  private evictIdle(): void {
    let excess = this.entries.size - this.maxOpenFiles;
    for (const [path, entry] of this.entries) {
      if (excess <= 0) return;
      if (!entry.log || entry.users > 0 || !entry.log.idle) continue;
      this.entries.delete(path);
      excess -= 1;
      void entry.log.close().catch((error: unknown) => this.options.log.warn("closing an idle file failed", { path, error: String(error) }));
    }
  }

  /** Waits for every queued record, then closes every file. */
  async close(): Promise<void> {
    this.closed = true;
    const entries = [...this.entries.values()];
    this.entries.clear();
    const logs = await Promise.allSettled(entries.map((e) => e.opening));
    await Promise.all(this.retiring.values());
    await Promise.all(logs.flatMap((l) => (l.status === "fulfilled" ? [l.value.close().catch(() => undefined)] : [])));
  }
}
