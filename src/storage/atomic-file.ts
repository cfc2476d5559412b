/**
 * Crash-safe file writes. `writeFileAtomic` replaces a file so a reader (or a process
 * restarted after kill -9 or power loss) sees either the old bytes or the new ones, never a
 * mix. `DurableAppender` appends and fsyncs before acknowledging. Used by the file store,
 * key files and the audit log. `readStateFile` reads back a JSON state file written so.
 */
import { randomBytes } from "node:crypto";
import { open, readFile, rename, rm, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { PosternError } from "../errors.js";

/** fsyncs a directory so a rename or a newly created entry in it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch (err) {
    // Some platforms (Windows) cannot open or fsync directories; the rename is still atomic.
    if ((err as NodeJS.ErrnoException).code !== "EISDIR" && (err as NodeJS.ErrnoException).code !== "EPERM") {
      throw err;
    }
  } finally {
    await handle?.close();
  }
}

async function writeAll(handle: FileHandle, data: Uint8Array): Promise<void> {
  for (let offset = 0; offset < data.length; ) {
    const { bytesWritten } = await handle.write(data, offset, data.length - offset);
    offset += bytesWritten;
  }
}

export interface AtomicWriteOptions {
  /** File mode of the new file. Default 0o600: PKI state is private unless said otherwise. */
  mode?: number;
}

/**
 * Atomically replaces `path` with `data` (bytes, text, or chunks of either): write a temp file in the same directory, fsync it,
 * rename over the target, fsync the directory. On error the temp file is removed and the
 * target is untouched.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string | readonly (Uint8Array | string)[],
  options: AtomicWriteOptions = {},
): Promise<void> {
  // Chunks let large snapshots be written without one giant string.
  const chunks = typeof data === "string" || data instanceof Uint8Array ? [data] : data;
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  const handle = await open(temp, "wx", options.mode ?? 0o600);
  try {
    try {
      for (const chunk of chunks) {
        await writeAll(handle, typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk);
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
}

/**
 * An append-only file kept open. `append` resolves only after the bytes are on disk
 * (fdatasync). Appends are serialised; concurrent callers are grouped into one write and one
 * fsync (group commit), which keeps throughput up without weakening the guarantee.
 */
export class DurableAppender {
  readonly path: string;
  #handle: FileHandle;
  #pending: { data: Uint8Array; resolve: () => void; reject: (e: unknown) => void }[] = [];
  #flushing: Promise<void> | undefined;
  #failed: unknown;

  private constructor(path: string, handle: FileHandle) {
    this.path = path;
    this.#handle = handle;
  }

  /** Opens (creating with `mode`, default 0o600) and makes the directory entry durable. */
  static async open(path: string, mode = 0o600): Promise<DurableAppender> {
    const handle = await open(path, "a", mode);
    await fsyncDir(dirname(path));
    return new DurableAppender(path, handle);
  }

  /**
   * Appends `data` and resolves once it is durable. After a failed write every later call
   * rejects: the file's tail is unknown, so the owner must reopen and re-read it.
   */
  append(data: Uint8Array | string): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ data: bytes, resolve, reject });
      this.#flushing ??= this.#flush();
    });
  }

  async #flush(): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending;
      this.#pending = [];
      try {
        if (this.#failed !== undefined) throw this.#failed;
        await writeAll(this.#handle, concat(batch.map((b) => b.data)));
        await this.#handle.datasync();
        for (const b of batch) b.resolve();
      } catch (err) {
        this.#failed ??= err;
        for (const b of batch) b.reject(err);
      }
    }
    this.#flushing = undefined;
  }

  /** Waits for queued appends, then closes the file. */
  async close(): Promise<void> {
    await this.#flushing;
    await this.#handle.close();
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1 && parts[0]) return parts[0];
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Reads a JSON state file written with `writeFileAtomic`: undefined when there is none;
 * `parse` checks its shape (and throws when it is wrong).
 * @throws PosternError `internal` naming the file when it is not JSON or `parse` refuses it.
 */
export async function readStateFile<T>(path: string, parse: (value: unknown) => T): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  try {
    return parse(JSON.parse(text));
  } catch (cause) {
    throw new PosternError("internal", `${path} is damaged: ${(cause as Error).message}`, { cause });
  }
}
