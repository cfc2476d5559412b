import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t, { type Test } from "tap";
import { endOfLastLine, linesBackward, nodeFileSystem, repairTornTail, type StorageFile } from "../../src/storage/index.js";

/** A file with `text`, wrapped to count the bytes read. */
async function fileWith(t: Test, text: string | Buffer) {
  const dir = await mkdtemp(join(tmpdir(), "postern-tail-scan-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, "f.jsonl");
  await writeFile(path, text);
  const { file: inner } = await nodeFileSystem.openFile(path);
  t.teardown(() => inner.close());
  const stats = { reads: 0, bytesRead: 0 };
  const file: StorageFile = {
    writesAreDurable: inner.writesAreDurable,
    write: (...a) => inner.write(...a),
    sync: () => inner.sync(),
    truncate: (n) => inner.truncate(n),
    size: () => inner.size(),
    close: () => inner.close(),
    read: async (...a) => {
      const n = await inner.read(...a);
      stats.reads += 1;
      stats.bytesRead += n;
      return n;
    },
  };
  return { file, stats, size: Buffer.byteLength(text) };
}

const collect = async (lines: AsyncIterable<Buffer>) => {
  const out: string[] = [];
  for await (const line of lines) out.push(line.toString());
  return out;
};

t.test("lines come last first, for every chunk size, and a torn tail is skipped", async (t) => {
  const lines = ["", "a", "bb", "a line longer than several chunks of the reader", "", "ünïcødé", "z"];
  const text = lines.join("\n") + "\n" + "torn tail";
  for (const chunk of [1, 2, 3, 5, 7, 16, 64, 1 << 16]) {
    const { file, size } = await fileWith(t, text);
    t.same(await collect(linesBackward(file, size, chunk)), [...lines].reverse(), `chunk ${chunk}`);
  }
});

t.test("edge cases: empty file, only a torn line, a single newline", async (t) => {
  for (const [text, expected] of [["", []], ["torn", []], ["\n", [""]], ["x\n", ["x"]]] as const) {
    const { file, size } = await fileWith(t, text);
    t.same(await collect(linesBackward(file, size, 2)), expected, JSON.stringify(text));
  }
});

t.test("reading the newest lines of a large file reads only its end", async (t) => {
  const line = JSON.stringify({ id: "x", pad: "p".repeat(200) }) + "\n";
  const { file, stats, size } = await fileWith(t, line.repeat(20_000)); // ~4 MB
  let taken = 0;
  for await (const l of linesBackward(file, size)) {
    t.equal(l.toString() + "\n", line);
    if (++taken === 3) break;
  }
  t.ok(stats.bytesRead <= 2 * 64 * 1024, `read ${stats.bytesRead} of ${size} bytes`);
});

t.test("endOfLastLine and repairTornTail", async (t) => {
  const { file, size } = await fileWith(t, "a\nbb\nccc");
  t.equal(await endOfLastLine(file, size, 2), 5);
  t.same(await repairTornTail(file, 2), { size: 5, droppedBytes: 3 });
  t.same(await repairTornTail(file, 2), { size: 5, droppedBytes: 0 });
  t.equal(await file.size(), 5);
});
