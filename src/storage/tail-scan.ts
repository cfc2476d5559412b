/**
 * Reading a JSON-lines file from its end, one chunk at a time: what a start needs (the newest
 * entries, a torn last line) costs a few reads however large the file is.
 */
import type { StorageFile } from "./file-system.js";

/** Bytes read per step. */
export const SCAN_CHUNK_BYTES = 64 * 1024;

const NEWLINE = 0x0a;

/** Fills `into` from `position`. @throws Error when the file ends first (it shrank under us). */
async function readFully(file: StorageFile, into: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < into.length; ) {
    const n = await file.read(into, done, into.length - done, position + done);
    if (n <= 0) throw new Error(`the file ended at ${position + done} while reading ${into.length} bytes at ${position}`);
    done += n;
  }
}

/** The offset just after the last "\n" before `size` (0 when there is none): where a torn tail begins. */
export async function endOfLastLine(file: StorageFile, size: number, chunkBytes = SCAN_CHUNK_BYTES): Promise<number> {
  for (let end = size; end > 0; ) {
    const start = Math.max(0, end - chunkBytes);
    const chunk = Buffer.alloc(end - start);
    await readFully(file, chunk, start);
    const at = chunk.lastIndexOf(NEWLINE);
    if (at !== -1) return start + at + 1;
    end = start;
  }
  return 0;
}

/**
 * Cuts off a torn tail (bytes after the last "\n": an append that never completed, so never
 * acknowledged) and fsyncs. Resolves with the file's size afterwards and the bytes dropped.
 */
export async function repairTornTail(file: StorageFile, chunkBytes = SCAN_CHUNK_BYTES): Promise<{ size: number; droppedBytes: number }> {
  const size = await file.size();
  const end = await endOfLastLine(file, size, chunkBytes);
  if (end === size) return { size, droppedBytes: 0 };
  await file.truncate(end);
  await file.sync();
  return { size: end, droppedBytes: size - end };
}

/**
 * The complete lines of the first `size` bytes (without their "\n"), last first. Bytes after
 * the last "\n" are skipped. Reads only as far back as the caller iterates; a line longer than
 * a chunk is put together from several reads.
 */
export async function* linesBackward(file: StorageFile, size: number, chunkBytes = SCAN_CHUNK_BYTES): AsyncGenerator<Buffer> {
  const end = await endOfLastLine(file, size, chunkBytes);
  if (end === 0) return;
  // Pieces of the line being put together, in file order; its start is not read yet.
  let pieces: Buffer[] = [];
  for (let unread = end - 1; unread > 0; ) {
    const start = Math.max(0, unread - chunkBytes);
    const chunk = Buffer.alloc(unread - start);
    await readFully(file, chunk, start);
    let lineEnd = chunk.length;
    // lastIndexOf with a negative offset counts from the end: stop at 0 explicitly.
    for (let at = chunk.lastIndexOf(NEWLINE, lineEnd - 1); at !== -1; at = at === 0 ? -1 : chunk.lastIndexOf(NEWLINE, at - 1)) {
      yield Buffer.concat([chunk.subarray(at + 1, lineEnd), ...pieces]);
      pieces = [];
      lineEnd = at;
    }
    pieces.unshift(chunk.subarray(0, lineEnd));
    unread = start;
  }
  yield Buffer.concat(pieces);
}
