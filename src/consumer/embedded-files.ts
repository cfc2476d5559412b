/**
 * Reading an embedded-mode stream file (`data/<backend>.jsonl`) the way it is written: rotation
 * renames the file to `<file>.000001`, `<file>.000002`, ... (numbers only grow, a rotated file
 * never changes again) and starts a new one; retention may remove the oldest rotated files.
 * Entry ids (`<ms>-<seq>`) increase across all of them, so a consumer resumes after the last
 * id it handled, whatever was rotated meanwhile.
 */
import { readdir, readFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { StreamEntryFields } from "./verify-entry.js";

/** One stored message: its entry id and its signed fields (the body decoded). */
export interface EmbeddedEntry {
  id: string;
  fields: StreamEntryFields;
}

/** The files of the embedded stream at `path`, oldest first: its rotated files, then `path` itself. Missing ones are left out. */
export async function embeddedStreamFiles(path: string): Promise<string[]> {
  const base = basename(path);
  const names = await readdir(dirname(path)).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return [] as string[];
    throw error;
  });
  const rotated = names
    .flatMap((name) => {
      const m = name.startsWith(base + ".") ? /^(\d{6,})$/.exec(name.slice(base.length + 1)) : null;
      return m ? [{ name, number: Number(m[1]) }] : [];
    })
    .sort((a, b) => a.number - b.number)
    .map((r) => join(dirname(path), r.name));
  return names.includes(base) ? [...rotated, path] : rotated;
}

/** Whether entry id `a` comes after `b` (`<ms>-<seq>`, compared as numbers). */
export function entryIdAfter(a: string, b: string): boolean {
  const [am = 0, as = 0] = a.split("-").map(Number);
  const [bm = 0, bs = 0] = b.split("-").map(Number);
  return am > bm || (am === bm && as > bs);
}

/**
 * The entries of the embedded stream at `path` in order, across its rotated files, after
 * `afterId` when given. A rotation during the read loses nothing: the files are listed again
 * at the end, and a newly rotated one is read too (ids already seen are skipped).
 * @throws SyntaxError naming the file and line of a line that is not JSON.
 */
export async function* readEmbeddedEntries(path: string, options: { afterId?: string } = {}): AsyncGenerator<EmbeddedEntry> {
  let last = options.afterId;
  let listed = await embeddedStreamFiles(path);
  for (;;) {
    for (const file of listed) {
      const text = await readFile(file, "utf8").catch((error: NodeJS.ErrnoException) => {
        // Renamed (rotated) or removed (retention) since it was listed: the next listing finds it.
        if (error.code === "ENOENT") return "";
        throw error;
      });
      const lines = text.split("\n");
      // A last line without "\n" is an append still being written.
      lines.pop();
      for (const [i, line] of lines.entries()) {
        if (line.trim() === "") continue;
        let entry: { id?: unknown; bodyEncoding?: unknown; fields?: Record<string, string> };
        try {
          entry = JSON.parse(line) as typeof entry;
        } catch {
          throw new SyntaxError(`${file}:${i + 1} is not JSON`);
        }
        if (typeof entry.id !== "string" || typeof entry.fields !== "object" || entry.fields === null) continue;
        if (last !== undefined && !entryIdAfter(entry.id, last)) continue;
        const fields: Record<string, string | Buffer> = { ...entry.fields };
        if (entry.bodyEncoding === "base64" && typeof entry.fields.body === "string") fields.body = Buffer.from(entry.fields.body, "base64");
        last = entry.id;
        yield { id: entry.id, fields };
      }
    }
    const again = await embeddedStreamFiles(path);
    const rotatedMeanwhile = again.filter((file) => file !== path && !listed.includes(file));
    if (rotatedMeanwhile.length === 0) return;
    listed = [...rotatedMeanwhile, ...(again.includes(path) ? [path] : [])];
  }
}
