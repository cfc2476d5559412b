import { join } from "node:path";
import type { Logger } from "../log.js";
import { PosternError } from "../errors.js";
import type { MemoryReplayGuard } from "../replay/index.js";
import {
  linesBackward,
  listRotated,
  repairTornTail,
  rotationPolicy,
  type LogPool,
  type RetentionSettings,
  type RotationPolicy,
  type StorageFileSystem,
} from "../storage/index.js";
import { readStoredEntry } from "./stored-entry.js";

/** A stream's file, or one of its rotations (`<stream>.jsonl.000001`). */
const STREAM_FILE = /^([A-Za-z0-9._-]{1,128})\.jsonl(?:\.\d{6,})?$/;

/** The time of a stored line: its entry id's time part (ids only grow, across rotations too). */
function entryTimeMs(line: Buffer): number | undefined {
  return readStoredEntry(line)?.idMs;
}

/**
 * One stream backend's files in embedded mode: `<dataDir>/<backend>.jsonl` for a fixed stream
 * name, `<dataDir>/<backend>/<stream>.jsonl` for a template. It counts the stream names that
 * hold messages (the `maxStreams` cap), hands out entry ids in Redis Stream form (`<ms>-<seq>`,
 * increasing across all of the backend's files), and appends through the shared LogPool.
 */
export class StreamFileSet {
  /** Streams with at least one stored message. */
  private readonly names = new Set<string>();
  /** New streams with a first message on its way: they count against the cap until it is stored or refused. */
  private readonly starting = new Map<string, number>();
  private lastMs = 0;
  private sequence = 0;

  constructor(
    private readonly pool: LogPool,
    readonly backend: string,
    /** The directory of a templated backend's files; for a fixed name, the data directory. */
    readonly dir: string,
    readonly fixedName: string | undefined,
    /** Rotation and retention of each stream's file; none when undefined. */
    private readonly rotation?: RotationPolicy,
  ) {}

  /** Stream names that hold messages. */
  get streamCount(): number {
    return this.names.size;
  }

  pathOf(stream: string): string {
    return this.fixedName === undefined ? join(this.dir, `${stream}.jsonl`) : join(this.dir, `${this.backend}.jsonl`);
  }

  /** Called by the start's scan: a stream that holds messages, and the newest id seen in it. */
  noteStored(stream: string, newestId: string | undefined): void {
    this.names.add(stream);
    const ms = newestId === undefined ? undefined : /^(\d+)-(\d+)$/.exec(newestId);
    if (!ms) return;
    const [time, seq] = [Number(ms[1]), Number(ms[2])];
    if (time > this.lastMs || (time === this.lastMs && seq > this.sequence)) [this.lastMs, this.sequence] = [time, seq];
  }

  /**
   * Appends the line `makeLine(entryId)` to `stream`'s file (created with its first message)
   * and resolves with the entry id once it is fsynced. The file is opened only here, so a
   * refused message never creates one.
   * @throws PosternError stream-limit (422) when `stream` would be a new name beyond
   * `maxStreams`; storage-unavailable (503) when it could not be stored.
   */
  async append(stream: string, maxStreams: number, receivedAtMs: number, makeLine: (entryId: string) => string): Promise<string> {
    const isNew = !this.names.has(stream);
    if (isNew) {
      const inFlight = this.starting.get(stream) ?? 0;
      if (inFlight === 0 && this.names.size + this.starting.size >= maxStreams) {
        throw new PosternError("stream-limit", `backend ${this.backend} holds ${maxStreams} streams, its maximum; existing streams still take messages`);
      }
      this.starting.set(stream, inFlight + 1);
    }
    let entryId = "";
    try {
      await this.pool.append(this.pathOf(stream), () => makeLine((entryId = this.nextEntryId(receivedAtMs))), this.rotation);
      this.names.add(stream);
      return entryId;
    } finally {
      if (isNew) {
        const left = (this.starting.get(stream) ?? 1) - 1;
        if (left > 0) this.starting.set(stream, left);
        else this.starting.delete(stream);
      }
    }
  }

  private nextEntryId(nowMs: number): string {
    if (nowMs > this.lastMs) {
      this.lastMs = nowMs;
      this.sequence = 0;
    } else {
      this.sequence += 1;
    }
    return `${this.lastMs}-${this.sequence}`;
  }
}

export interface StreamFilesOptions {
  dataDir: string;
  fs: StorageFileSystem;
  pool: LogPool;
  guard: MemoryReplayGuard;
  log: Logger;
  now: () => number;
  /** `data.retention.messages`: rotation by size and age, and what is kept of rotated files. */
  retention?: RetentionSettings;
}

/**
 * Embedded mode's stream files, shared by the backends of every config generation (a reload
 * must never put a second writer on a file, or restart the entry ids). A backend's files are
 * read once per process, before it takes a message: torn tails are cut, stream names counted,
 * entry ids continued, and the nonce claims still live are put back into the replay guard,
 * reading each file from its end only as far as `horizonMs` (see claimHorizonMs).
 */
export class StreamFiles {
  private readonly sets = new Map<string, Promise<StreamFileSet>>();
  /** The longest claim horizon any config generation asked for: retention keeps every file it reaches. */
  private horizonMs = 0;
  private readonly rotation: RotationPolicy | undefined;

  constructor(private readonly options: StreamFilesOptions) {
    const { retention, now } = options;
    this.rotation = retention && rotationPolicy(retention, entryTimeMs, now, () => now() - this.horizonMs);
  }

  /**
   * The file set of `backend` (`fixedName` for a fixed stream name, undefined for a template).
   * @throws when an existing file cannot be read: a start that cannot rebuild its replay
   * protection does not serve (fail closed).
   */
  open(backend: string, fixedName: string | undefined, horizonMs: number): Promise<StreamFileSet> {
    this.horizonMs = Math.max(this.horizonMs, horizonMs);
    const key = `${fixedName === undefined ? "dir" : "file"}:${backend}`;
    let set = this.sets.get(key);
    if (!set) {
      set = this.scan(backend, fixedName, horizonMs);
      set.catch(() => this.sets.get(key) === set && this.sets.delete(key));
      this.sets.set(key, set);
    }
    return set;
  }

  private async scan(backend: string, fixedName: string | undefined, horizonMs: number): Promise<StreamFileSet> {
    const { dataDir, fs, pool } = this.options;
    const dir = fixedName === undefined ? join(dataDir, backend) : dataDir;
    await fs.makeDirectory(dir);
    const set = new StreamFileSet(pool, backend, dir, fixedName, this.rotation);
    const streams =
      fixedName === undefined
        ? [...new Set((await fs.listDirectory(dir)).flatMap((name) => STREAM_FILE.exec(name)?.[1] ?? []))]
        : (await fs.fileSize(set.pathOf(fixedName))) !== undefined || (await listRotated(fs, set.pathOf(fixedName))).length > 0
          ? [fixedName]
          : [];
    let claims = 0;
    for (const stream of streams) claims += await this.scanStream(set, stream, horizonMs);
    if (claims > 0) this.options.log.info("live nonce claims read back from the message files", { backend, claims });
    return set;
  }

  /**
   * Reads a stream's file from its end, then its rotated files newest first, as far back as
   * the horizon reaches (a claim spent just before a rotation lives in the rotated file).
   * Resolves with the number of claims put back.
   */
  private async scanStream(set: StreamFileSet, stream: string, horizonMs: number): Promise<number> {
    const { fs, now } = this.options;
    const path = set.pathOf(stream);
    const rotated = (await listRotated(fs, path)).reverse();
    const files = [...((await fs.fileSize(path)) !== undefined ? [{ path, active: true }] : []), ...rotated.map((r) => ({ path: r.path, active: false }))];
    const scan = { seeded: 0, newest: undefined as string | undefined, holdsMessages: false, done: false };
    const oldest = now() - horizonMs;
    for (const file of files) {
      await this.scanFile(file.path, file.active, oldest, scan);
      if (scan.done) break;
    }
    if (scan.holdsMessages) set.noteStored(stream, scan.newest);
    return scan.seeded;
  }

  /** Reads one file from its end into `scan`; `done` once a line beyond the horizon is met. */
  private async scanFile(
    path: string,
    active: boolean,
    oldest: number,
    scan: { seeded: number; newest: string | undefined; holdsMessages: boolean; done: boolean },
  ): Promise<void> {
    const { fs, guard, log } = this.options;
    const { file } = await fs.openFile(path);
    try {
      let size = await file.size();
      if (active) {
        const repaired = await repairTornTail(file);
        if (repaired.droppedBytes > 0) log.warn("cut a torn last line (an append that was never acknowledged)", { path, droppedBytes: repaired.droppedBytes });
        size = repaired.size;
      }
      // An empty file holds no message (a leftover of a failed first write): it does not count.
      if (size === 0) return;
      scan.holdsMessages = true;
      for await (const line of linesBackward(file, size)) {
        const entry = readStoredEntry(line);
        if (!entry) continue;
        scan.newest ??= entry.id;
        // Ids only grow through a file and across its rotations, and an id is never earlier
        // than its message's receipt: once one is beyond the horizon, no claim before it can be live.
        if (entry.idMs < oldest) {
          scan.done = true;
          return;
        }
        if (entry.claim && guard.seed({ ...entry.claim, entryId: entry.id })) scan.seeded += 1;
      }
    } finally {
      await file.close();
    }
  }
}
