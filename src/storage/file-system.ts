/**
 * The few file operations embedded storage needs, behind an interface so a test can make any
 * of them fail (short writes, ENOSPC, EIO on write, fsync or truncate). `nodeFileSystem` is
 * the real one. Writes and reads are positional: an append goes where the owner says the
 * committed data ends, never "wherever the file ends now" (O_APPEND), so a torn batch can be
 * cut off and overwritten.
 */
import { constants } from "node:fs";
import { mkdir, open, readdir, rename, stat, unlink, type FileHandle } from "node:fs/promises";

/** One open file. */
export interface StorageFile {
  /**
   * Whether a write is durable once it resolves (data and the size it reaches, as after
   * fdatasync): the file was opened with O_DSYNC, so an append needs no `sync` of its own,
   * which saves a thread-pool round trip and about a third of the CPU an append costs.
   */
  readonly writesAreDurable: boolean;
  /** Writes up to `length` bytes of `data` from `offset` at `position`; resolves with how many were written (possibly fewer). */
  write(data: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  /** Reads up to `length` bytes at `position` into `into` at `offset`; resolves with how many were read (0 at the end). */
  read(into: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  /** fsync: resolves once written data and the file's size are durable. */
  sync(): Promise<void>;
  truncate(length: number): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface StorageFileSystem {
  /** Opens for reading and writing, creating the file (mode 0600) when missing; `created` says it did. */
  openFile(path: string): Promise<{ file: StorageFile; created: boolean }>;
  /** Creates a directory and its parents (mode 0700); an existing one is fine. */
  makeDirectory(path: string): Promise<void>;
  /** The names in a directory; a missing directory has none. */
  listDirectory(path: string): Promise<string[]>;
  /** The size of a file, or undefined when there is none. */
  fileSize(path: string): Promise<number | undefined>;
  /** Removes a file; a missing one is fine. */
  remove(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** fsyncs a directory, so a created, renamed or removed entry in it survives a crash. */
  syncDirectory(path: string): Promise<void>;
}

/** O_DSYNC where the platform has it (not on Windows: there an append is a write and an fsync). */
const O_DSYNC: number = constants.O_DSYNC ?? 0;
/** Read and write, each write durable when it returns (`writesAreDurable`). */
const DURABLE_READ_WRITE = constants.O_RDWR | O_DSYNC;

class NodeStorageFile implements StorageFile {
  readonly writesAreDurable = O_DSYNC !== 0;
  constructor(private readonly handle: FileHandle) {}
  async write(data: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return (await this.handle.write(data, offset, length, position)).bytesWritten;
  }
  async read(into: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return (await this.handle.read(into, offset, length, position)).bytesRead;
  }
  sync(): Promise<void> {
    return this.handle.sync();
  }
  truncate(length: number): Promise<void> {
    return this.handle.truncate(length);
  }
  async size(): Promise<number> {
    return (await this.handle.stat()).size;
  }
  close(): Promise<void> {
    return this.handle.close();
  }
}

const errno = (error: unknown): string | undefined => (error as NodeJS.ErrnoException | undefined)?.code;

/** The real file system (node:fs/promises). */
export const nodeFileSystem: StorageFileSystem = {
  async openFile(path) {
    try {
      // O_EXCL first: only then is "created" known for sure (a new file's directory entry must be fsynced).
      return { file: new NodeStorageFile(await open(path, DURABLE_READ_WRITE | constants.O_CREAT | constants.O_EXCL, 0o600)), created: true };
    } catch (error) {
      if (errno(error) !== "EEXIST") throw error;
      return { file: new NodeStorageFile(await open(path, DURABLE_READ_WRITE)), created: false };
    }
  },
  async makeDirectory(path) {
    await mkdir(path, { recursive: true, mode: 0o700 });
  },
  async listDirectory(path) {
    try {
      return await readdir(path);
    } catch (error) {
      if (errno(error) === "ENOENT") return [];
      throw error;
    }
  },
  async fileSize(path) {
    try {
      return (await stat(path)).size;
    } catch (error) {
      if (errno(error) === "ENOENT") return undefined;
      throw error;
    }
  },
  async remove(path) {
    try {
      await unlink(path);
    } catch (error) {
      if (errno(error) !== "ENOENT") throw error;
    }
  },
  rename(from, to) {
    return rename(from, to);
  },
  async syncDirectory(path) {
    const handle = await open(path, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
};
