/**
 * A pid lock file for the file store's directory: the journal has one writer, so a second
 * live process (a `node:cluster` worker, a second replica on a shared volume) must fail to
 * open it instead of silently interleaving writes. A lock left by a dead process is taken over.
 */
import { open, readFile, rm } from "node:fs/promises";
import { PosternError } from "../../errors.js";
import { writeFileAtomic } from "../../storage/index.js";

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else, so it is alive.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Takes the lock at `path` for this process. Throws `conflict` if another live process holds
 * it. Returns the release function (removes the file only if it is still ours).
 */
export async function acquireStoreLock(path: string): Promise<() => Promise<void>> {
  const mine = String(process.pid);
  try {
    const handle = await open(path, "wx", 0o600);
    try {
      await handle.writeFile(mine);
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const holder = Number.parseInt(await readFile(path, "utf8").catch(() => ""), 10);
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
      throw new PosternError("conflict", `PKI store is in use by process ${holder}`);
    }
    // Stale (crashed holder) or our own pid (reopen after a simulated crash): take it over.
    await writeFileAtomic(path, mine);
  }
  return async () => {
    const holder = await readFile(path, "utf8").catch(() => "");
    if (holder === mine) await rm(path, { force: true });
  };
}
