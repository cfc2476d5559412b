/**
 * Size and age rotation of an append-only JSON-lines file, and the retention of what was
 * rotated. Rotating renames `<name>` to `<name>.<NNNNNN>` (numbers only grow, so the newest
 * rotated file has the highest; nothing is ever renamed twice, rewritten or truncated) and the
 * next append starts a new `<name>`. A line is never split: rotation happens between batches.
 * Retention removes the oldest rotated files beyond a count or an age, but never one that a
 * caller still needs (a replay window that reaches into it).
 */
import { basename, dirname, join } from "node:path";
import type { StorageFile, StorageFileSystem } from "./file-system.js";
import { linesBackward } from "./tail-scan.js";

/** When to rotate one file and what to keep of the rotated ones. Times in ms since the epoch. */
export interface RotationPolicy {
  /** Rotate before a write once the file holds at least this many bytes (0: never by size). */
  maxBytes: number;
  /** Rotate before a write once the file's first line is this old (0: never by age). */
  maxAgeMs: number;
  /** Rotated files kept at most (0: no limit). */
  keepFiles: number;
  /** A rotated file is removed once its newest line is this old (0: never by age). */
  keepMs: number;
  /** The time a line was written, or undefined when it cannot be read. */
  lineTimeMs: (line: Buffer) => number | undefined;
  /**
   * Rotated files whose newest line is at or after this time are kept whatever the limits say
   * (the replay window still reads them at a start). Default: no such floor.
   */
  keepNewerThanMs?: () => number;
  now: () => number;
}

/** One rotated file. */
export interface RotatedFile {
  path: string;
  /** Its rotation number (1 for the first rotation). */
  number: number;
}

const DIGITS = 6;

/** The path of rotation `n` of `path`. */
export function rotatedPath(path: string, n: number): string {
  return `${path}.${String(n).padStart(DIGITS, "0")}`;
}

/** The rotated files of `path`, oldest first. */
export async function listRotated(fs: StorageFileSystem, path: string): Promise<RotatedFile[]> {
  const base = basename(path);
  const dir = dirname(path);
  const found: RotatedFile[] = [];
  for (const name of await fs.listDirectory(dir)) {
    if (!name.startsWith(base + ".")) continue;
    const suffix = name.slice(base.length + 1);
    if (/^\d{6,}$/.test(suffix)) found.push({ path: join(dir, name), number: Number(suffix) });
  }
  return found.sort((a, b) => a.number - b.number);
}

/**
 * Renames `path` to its next rotation and fsyncs the directory. The caller must be the file's
 * only writer and hold no unwritten data for it. Resolves with the rotated file.
 */
export async function rotateFile(fs: StorageFileSystem, path: string): Promise<RotatedFile> {
  const rotated = await listRotated(fs, path);
  const number = (rotated.at(-1)?.number ?? 0) + 1;
  const to = rotatedPath(path, number);
  await fs.rename(path, to);
  await fs.syncDirectory(dirname(path));
  return { path: to, number };
}

/** Whether a file of `bytes` whose first line was written at `startedAtMs` is due for rotation. */
export function rotationDue(policy: RotationPolicy, bytes: number, startedAtMs: number | undefined): boolean {
  if (bytes === 0) return false;
  if (policy.maxBytes > 0 && bytes >= policy.maxBytes) return true;
  return policy.maxAgeMs > 0 && startedAtMs !== undefined && policy.now() - startedAtMs >= policy.maxAgeMs;
}

/** The first complete line of a file (without "\n"), or undefined when it has none. Reads at most `limit` bytes. */
export async function firstLine(file: StorageFile, limit = 1024 * 1024): Promise<Buffer | undefined> {
  const chunk = Buffer.alloc(64 * 1024);
  const parts: Buffer[] = [];
  for (let position = 0; position < limit; ) {
    const n = await file.read(chunk, 0, chunk.length, position);
    if (n <= 0) return undefined;
    const at = chunk.subarray(0, n).indexOf(0x0a);
    if (at !== -1) return Buffer.concat([...parts, chunk.subarray(0, at)]);
    parts.push(Buffer.from(chunk.subarray(0, n)));
    position += n;
  }
  return undefined;
}

/** The time of the newest line of the file at `path` that `lineTimeMs` can read, or undefined. */
export async function newestLineTimeMs(fs: StorageFileSystem, path: string, lineTimeMs: (line: Buffer) => number | undefined): Promise<number | undefined> {
  // openFile creates a missing file: never bring a removed one back.
  if ((await fs.fileSize(path)) === undefined) return undefined;
  const { file } = await fs.openFile(path);
  try {
    for await (const line of linesBackward(file, await file.size())) {
      const at = lineTimeMs(line);
      if (at !== undefined) return at;
    }
    return undefined;
  } finally {
    await file.close();
  }
}

/** The time of the first line of the file at `path`, or undefined (missing, empty or unreadable). */
export async function firstLineTimeMs(fs: StorageFileSystem, path: string, lineTimeMs: (line: Buffer) => number | undefined): Promise<number | undefined> {
  if ((await fs.fileSize(path)) === undefined) return undefined;
  const { file } = await fs.openFile(path);
  try {
    const line = await firstLine(file);
    return line === undefined ? undefined : lineTimeMs(line);
  } finally {
    await file.close();
  }
}

/**
 * Removes the oldest rotated files of `path` while more than `keepFiles` are left or the
 * oldest one's newest line is older than `keepMs`; stops at the first file the policy must
 * keep (`keepNewerThanMs`), so what is left is always a contiguous run up to the newest.
 * Resolves with the removed paths, oldest first.
 */
export async function applyRetention(fs: StorageFileSystem, path: string, policy: RotationPolicy): Promise<string[]> {
  if (policy.keepFiles === 0 && policy.keepMs === 0) return [];
  const rotated = await listRotated(fs, path);
  const removed: string[] = [];
  const floor = policy.keepNewerThanMs?.();
  for (const [i, file] of rotated.entries()) {
    const left = rotated.length - i;
    const tooMany = policy.keepFiles > 0 && left > policy.keepFiles;
    const newest = await newestLineTimeMs(fs, file.path, policy.lineTimeMs);
    if (floor !== undefined && newest !== undefined && newest >= floor) break;
    const tooOld = policy.keepMs > 0 && newest !== undefined && policy.now() - newest > policy.keepMs;
    if (!tooMany && !tooOld) break;
    await fs.remove(file.path);
    removed.push(file.path);
  }
  if (removed.length > 0) await fs.syncDirectory(dirname(path));
  return removed;
}

/** The configuration of one kind of file (`data.retention.<kind>`), in the config's units. */
export interface RetentionSettings {
  rotateBytes: number;
  rotateAfterSeconds: number;
  keepFiles?: number;
  keepSeconds?: number;
}

/** The RotationPolicy of `settings` for a file whose lines carry their time as `lineTimeMs` reads it. */
export function rotationPolicy(
  settings: RetentionSettings,
  lineTimeMs: (line: Buffer) => number | undefined,
  now: () => number,
  keepNewerThanMs?: () => number,
): RotationPolicy {
  return {
    maxBytes: settings.rotateBytes,
    maxAgeMs: settings.rotateAfterSeconds * 1000,
    keepFiles: settings.keepFiles ?? 0,
    keepMs: (settings.keepSeconds ?? 0) * 1000,
    lineTimeMs,
    now,
    ...(keepNewerThanMs ? { keepNewerThanMs } : {}),
  };
}
