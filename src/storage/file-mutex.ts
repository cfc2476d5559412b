/**
 * A short-lived lock between processes that share a directory (replicas on one volume, a CLI
 * next to a running gateway): a lock file created with O_EXCL, holding who took it and when.
 * Held for milliseconds around one append or one bootstrap, never for a process's lifetime
 * (that is `store-lock.ts`). Node has no flock(2); O_EXCL create is atomic on local file
 * systems and on NFSv3+.
 */
import { hostname } from "node:os";
import { open, readFile, rm, stat } from "node:fs/promises";
import { PosternError } from "../errors.js";

export interface FileMutexOptions {
  /** Give up after this long (`conflict`). Default 10 s. */
  timeoutMs?: number;
  /**
   * A lock older than this is taken over even if its holder cannot be checked (another host).
   * Default 30 s: every section guarded here finishes in well under a second.
   */
  staleMs?: number;
}

interface Holder {
  pid: number;
  host: string;
}

function holderAlive(holder: Holder): boolean | undefined {
  if (holder.host !== hostname()) return undefined; // cannot tell from here
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function tryCreate(path: string): Promise<boolean> {
  try {
    const handle = await open(path, "wx", 0o600);
    try {
      await handle.writeFile(JSON.stringify({ pid: process.pid, host: hostname(), at: Date.now() }));
    } finally {
      await handle.close();
    }
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
}

/** Removes the lock at `path` if its holder is dead (same host) or it is older than `staleMs`. */
async function clearIfStale(path: string, staleMs: number): Promise<void> {
  let text: string;
  let ageMs: number;
  try {
    [text, ageMs] = await Promise.all([readFile(path, "utf8"), stat(path).then((s) => Date.now() - s.mtimeMs)]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  let holder: Holder | undefined;
  try {
    holder = JSON.parse(text) as Holder;
  } catch {
    holder = undefined; // torn write by a holder that died at once: age decides
  }
  const alive = holder ? holderAlive(holder) : undefined;
  if (alive === false || (alive === undefined && ageMs > staleMs)) {
    // Another waiter may have cleared it and taken a fresh lock meanwhile: remove only what we judged.
    const again = await readFile(path, "utf8").catch(() => undefined);
    if (again === text) await rm(path, { force: true });
  }
}

/**
 * Runs `fn` while holding the lock file `path`; the lock is released whatever `fn` does.
 * Throws `conflict` if the lock cannot be taken within `timeoutMs`.
 */
export async function withFileMutex<T>(path: string, fn: () => Promise<T>, opts: FileMutexOptions = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  const staleMs = opts.staleMs ?? 30_000;
  for (let attempt = 0; !(await tryCreate(path)); attempt++) {
    if (Date.now() > deadline) throw new PosternError("conflict", `lock ${path} is held by another process`);
    await clearIfStale(path, staleMs);
    await new Promise((resolve) => setTimeout(resolve, Math.min(5 + attempt * 5, 50)));
  }
  try {
    return await fn();
  } finally {
    await rm(path, { force: true });
  }
}
