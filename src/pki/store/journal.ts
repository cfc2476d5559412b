/**
 * Reading the file store's JSON-lines journal after a start or a crash. A final line without
 * its newline is a torn, never-acknowledged append: it is cut off so the next append starts
 * on a clean line. Any other unreadable line is corruption and stops the open (fail closed).
 */
import { open, readFile } from "node:fs/promises";
import { PosternError } from "../../errors.js";

export interface JournalReplay {
  /** Complete lines applied. */
  lines: number;
  /** Bytes of a torn final line that were discarded (0 after a clean shutdown). */
  tornBytes: number;
}

/**
 * Calls `apply` with each parsed line in order and truncates a torn tail (unless `truncate` is
 * false). A missing file is an
 * empty journal. Throws `internal` naming the line number if a complete line does not parse
 * or `apply` rejects it.
 */
export async function replayJournal(path: string, apply: (op: unknown) => void, opts: { truncate?: boolean } = {}): Promise<JournalReplay> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { lines: 0, tornBytes: 0 };
    throw err;
  }
  let start = 0;
  let lines = 0;
  for (let nl = data.indexOf(0x0a, start); nl !== -1; nl = data.indexOf(0x0a, start)) {
    lines++;
    let op: unknown;
    try {
      // Slicing the Buffer per line avoids one huge string for large journals.
      op = JSON.parse(data.toString("utf8", start, nl));
      apply(op);
    } catch (err) {
      throw new PosternError("internal", `PKI journal ${path} is corrupt at line ${lines}`, { cause: err });
    }
    start = nl + 1;
  }
  const tornBytes = data.length - start;
  // A reader beside the writer (truncate: false) may see an append in progress: leave it be.
  if (tornBytes > 0 && opts.truncate !== false) await truncateDurably(path, start);
  return { lines, tornBytes };
}

async function truncateDurably(path: string, length: number): Promise<void> {
  const handle = await open(path, "r+");
  try {
    await handle.truncate(length);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
