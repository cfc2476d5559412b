/**
 * The on-disk form of the forward-signing key ring: `ring.json` (which key is active, which
 * are retired and until when they are published), one encrypted PKCS#8 file per key, and a
 * lock file that serialises writers (gateway replicas, the CLI) on one directory.
 */
import { open, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { PosternError } from "../../errors.js";
import { readStateFile, writeFileAtomic } from "../../storage/index.js";

/** One key's entry in `ring.json`. */
export interface RingKeyEntry {
  kid: string;
  createdAtMs: number;
  /** When it stopped signing; absent on the active key. */
  retiredAtMs?: number;
  /** Until when a retired key stays in the JWKS; absent on the active key. */
  publishUntilMs?: number;
}

/** `ring.json`: exactly one active key, listed in `keys` and not retired. */
export interface RingState {
  active: string;
  keys: RingKeyEntry[];
}

export const RING_DIR = "signing-keys";
export const RING_FILE = "ring.json";
const LOCK_FILE = "ring.lock";
/** A lock older than this was left by a crashed writer; a rotation takes well under a second. */
const STALE_LOCK_MS = 60_000;

/** A kid is an RFC 7638 SHA-256 thumbprint (43 base64url chars); anything else could escape the directory. */
const KID_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** The files of the ring in its directory `dir` (`<pkiDir>/signing-keys` unless configured). */
export function ringPaths(dir: string): { dir: string; ring: string; lock: string } {
  return { dir, ring: join(dir, RING_FILE), lock: join(dir, LOCK_FILE) };
}

export function keyFilePath(ringDir: string, kid: string): string {
  if (!KID_PATTERN.test(kid)) throw new PosternError("internal", `not a key id: ${JSON.stringify(kid.slice(0, 50))}`);
  return join(ringDir, `${kid}.key`);
}

/** Reads `ring.json`; undefined when there is none; `internal` when it is damaged. */
export function readRing(path: string): Promise<RingState | undefined> {
  return readStateFile(path, parseRing);
}

function parseRing(value: unknown): RingState {
  const v = value as { active?: unknown; keys?: unknown } | null;
  if (typeof v?.active !== "string" || !Array.isArray(v.keys)) throw new Error("needs active and keys");
  const keys = (v.keys as unknown[]).map(parseEntry);
  const active = keys.find((k) => k.kid === v.active);
  if (!active || active.retiredAtMs !== undefined) throw new Error("the active key is not a live key of the ring");
  if (new Set(keys.map((k) => k.kid)).size !== keys.length) throw new Error("a kid is listed twice");
  return { active: v.active, keys };
}

function parseEntry(value: unknown): RingKeyEntry {
  const e = value as Partial<Record<keyof RingKeyEntry, unknown>> | null;
  if (typeof e?.kid !== "string" || !KID_PATTERN.test(e.kid)) throw new Error("a key has no valid kid");
  if (!isTime(e.createdAtMs)) throw new Error(`key ${e.kid} has no createdAtMs`);
  if ((e.retiredAtMs === undefined) !== (e.publishUntilMs === undefined)) throw new Error(`key ${e.kid} is half retired`);
  if (e.retiredAtMs !== undefined && (!isTime(e.retiredAtMs) || !isTime(e.publishUntilMs))) {
    throw new Error(`key ${e.kid} has bad retirement times`);
  }
  return {
    kid: e.kid,
    createdAtMs: e.createdAtMs,
    ...(isTime(e.retiredAtMs) && { retiredAtMs: e.retiredAtMs }),
    ...(isTime(e.publishUntilMs) && { publishUntilMs: e.publishUntilMs }),
  };
}

function isTime(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** Replaces `ring.json` atomically (temp file, fsync, rename, fsync dir): the commit point of every change. */
export async function writeRing(path: string, state: RingState): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(state, null, 2) + "\n", { mode: 0o600 });
}

/**
 * Runs `fn` holding the ring's lock (an exclusively created file). A lock left by a crashed
 * writer is taken over after a minute; a live one makes this fail with `conflict`.
 */
export async function withRingLock<T>(lockPath: string, now: () => number, fn: () => Promise<T>): Promise<T> {
  await acquire(lockPath, now);
  try {
    return await fn();
  } finally {
    await rm(lockPath, { force: true });
  }
}

async function acquire(lockPath: string, now: () => number): Promise<void> {
  for (let attempt = 0; attempt <= 20; attempt++) {
    try {
      const handle = await open(lockPath, "wx", 0o600);
      await handle.writeFile(`${process.pid} ${new Date(now()).toISOString()}\n`);
      await handle.close();
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const ageMs = await stat(lockPath).then((s) => Date.now() - s.mtimeMs, () => 0);
    if (ageMs > STALE_LOCK_MS) await rm(lockPath, { force: true });
    else await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new PosternError("conflict", `the signing key ring is locked by another writer (${lockPath})`);
}
