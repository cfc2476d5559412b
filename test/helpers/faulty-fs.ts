import { nodeFileSystem, type StorageFile, type StorageFileSystem } from "../../src/storage/index.js";

export type FaultOperation = "open" | "write" | "sync" | "truncate" | "read";

/**
 * What a faulty operation does: fail with an errno code; for writes, also write only the first
 * `shortBytes` bytes and report that (a short write), or report 0 bytes (no progress).
 */
export type Fault = { code: string } | { shortBytes: number } | { noProgress: true };

interface Rule {
  operation: FaultOperation;
  fault: Fault;
  /** How many more times it applies; Infinity until healed. */
  remaining: number;
  path: RegExp | undefined;
  /** Only writes of more bytes than this (a disk with that much room left). */
  largerThan: number;
}

const errnoError = (code: string, syscall: string, path: string) =>
  Object.assign(new Error(`${code}: injected fault, ${syscall} '${path}'`), { code, syscall, path, errno: -1 });

/**
 * The real file system with faults on demand, for tests: ENOSPC or EIO on open, write, fsync,
 * truncate or read, short writes (the bytes really land, as a kernel's partial write would),
 * and writes that make no progress. Counts the operations it sees.
 */
export class FaultyFileSystem implements StorageFileSystem {
  private rules: Rule[] = [];
  readonly counts: Record<FaultOperation, number> = { open: 0, write: 0, sync: 0, truncate: 0, read: 0 };

  constructor(private readonly inner: StorageFileSystem = nodeFileSystem) {}

  /** Applies `fault` to the next `times` matching operations (default once). */
  inject(operation: FaultOperation, fault: Fault, options: { times?: number; path?: RegExp; largerThan?: number } = {}): void {
    this.rules.push({ operation, fault, remaining: options.times ?? 1, path: options.path, largerThan: options.largerThan ?? -1 });
  }

  /** Fails every matching operation with `code` until heal(). */
  failAlways(operation: FaultOperation, code: string, options: { path?: RegExp; largerThan?: number } = {}): void {
    this.inject(operation, { code }, { times: Infinity, ...options });
  }

  heal(): void {
    this.rules = [];
  }

  /** The fault for this operation, if any, used up by one. */
  take(operation: FaultOperation, path: string, length = 0): Fault | undefined {
    this.counts[operation] += 1;
    const rule = this.rules.find((r) => r.operation === operation && r.remaining > 0 && (!r.path || r.path.test(path)) && length > r.largerThan);
    if (!rule) return undefined;
    rule.remaining -= 1;
    return rule.fault;
  }

  async openFile(path: string): Promise<{ file: StorageFile; created: boolean }> {
    const fault = this.take("open", path);
    if (fault && "code" in fault) throw errnoError(fault.code, "open", path);
    const { file, created } = await this.inner.openFile(path);
    return { file: new FaultyFile(file, path, this), created };
  }
  makeDirectory(path: string) {
    return this.inner.makeDirectory(path);
  }
  listDirectory(path: string) {
    return this.inner.listDirectory(path);
  }
  fileSize(path: string) {
    return this.inner.fileSize(path);
  }
  remove(path: string) {
    return this.inner.remove(path);
  }
  rename(from: string, to: string) {
    return this.inner.rename(from, to);
  }
  syncDirectory(path: string) {
    return this.inner.syncDirectory(path);
  }
}

class FaultyFile implements StorageFile {
  /** Appends sync after writing, as over a file without O_DSYNC, so a fault can be put on the fsync too. */
  readonly writesAreDurable = false;
  constructor(
    private readonly inner: StorageFile,
    private readonly path: string,
    private readonly fs: FaultyFileSystem,
  ) {}

  async write(data: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const fault = this.fs.take("write", this.path, length);
    if (!fault) return this.inner.write(data, offset, length, position);
    if ("code" in fault) throw errnoError(fault.code, "write", this.path);
    if ("noProgress" in fault) return 0;
    const short = Math.min(fault.shortBytes, length);
    return short > 0 ? this.inner.write(data, offset, short, position) : 0;
  }
  async read(into: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const fault = this.fs.take("read", this.path);
    if (fault && "code" in fault) throw errnoError(fault.code, "read", this.path);
    return this.inner.read(into, offset, length, position);
  }
  async sync(): Promise<void> {
    const fault = this.fs.take("sync", this.path);
    if (fault && "code" in fault) throw errnoError(fault.code, "fsync", this.path);
    return this.inner.sync();
  }
  async truncate(length: number): Promise<void> {
    const fault = this.fs.take("truncate", this.path);
    if (fault && "code" in fault) throw errnoError(fault.code, "ftruncate", this.path);
    return this.inner.truncate(length);
  }
  size(): Promise<number> {
    return this.inner.size();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
