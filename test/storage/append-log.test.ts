import { constants } from "node:fs";
import { mkdtemp, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t, { type Test } from "tap";
import { AppendLog, nodeFileSystem, StorageWriteError, type StorageFile, type StorageFileSystem } from "../../src/storage/index.js";
import { FaultyFileSystem } from "../helpers/faulty-fs.js";

async function setup(t: Test, initial?: string) {
  const dir = await mkdtemp(join(tmpdir(), "postern-append-log-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, "log.jsonl");
  if (initial !== undefined) await writeFile(path, initial);
  const fs = new FaultyFileSystem();
  const repaired: number[] = [];
  const log = await AppendLog.open(fs, path, (n) => repaired.push(n));
  t.teardown(() => log.close());
  return { fs, log, path, repaired, content: () => readFile(path, "utf8") };
}

const failure = async (promise: Promise<unknown>) => {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  if (!(error instanceof StorageWriteError)) throw new Error(`expected a StorageWriteError, got ${String(error)}`);
  return { failure: error.failure, operation: error.operation };
};

t.test("short writes are continued until the whole batch is written, then fsynced", async (t) => {
  const s = await setup(t, "old\n");
  s.fs.inject("write", { shortBytes: 3 }, { times: 2 });
  await s.log.append(Buffer.from("first line\nsecond\n"));
  t.equal(await s.content(), "old\nfirst line\nsecond\n");
  t.equal(s.log.committedBytes, 22);
  t.equal(s.fs.counts.write, 3, "3 + 3 + the rest");
  t.equal(s.fs.counts.sync, 1);
});

t.test("ENOSPC part-way through a batch cuts the file back to its committed length", async (t) => {
  const s = await setup(t, "a\n");
  s.fs.inject("write", { shortBytes: 5 });
  s.fs.inject("write", { code: "ENOSPC" });
  t.same(await failure(s.log.append(Buffer.from("torn line that never completes\n"))), { failure: "no_space", operation: "write" });
  t.equal(await s.content(), "a\n", "no torn line is left behind");
  t.equal(s.log.committedBytes, 2);
  t.notOk(s.log.isDirty);
  await s.log.append(Buffer.from("b\n"));
  t.equal(await s.content(), "a\nb\n", "the next record starts on a clean line");
});

t.test("a write that makes no progress fails instead of looping", async (t) => {
  const s = await setup(t);
  s.fs.inject("write", { shortBytes: 2 });
  s.fs.inject("write", { noProgress: true });
  t.same(await failure(s.log.append(Buffer.from("xxxxxx\n"))), { failure: "no_progress", operation: "write" });
  t.equal(await s.content(), "");
});

t.test("a failed fsync counts as not stored: the batch is cut off", async (t) => {
  const s = await setup(t, "a\n");
  s.fs.inject("sync", { code: "EIO" });
  t.same(await failure(s.log.append(Buffer.from("b\n"))), { failure: "io_error", operation: "sync" });
  t.equal(await s.content(), "a\n");
  t.equal(s.log.committedBytes, 2);
});

t.test("when the cut fails too, the log is dirty and cuts before it writes again", async (t) => {
  const s = await setup(t, "a\n");
  s.fs.inject("write", { shortBytes: 4 });
  s.fs.inject("write", { code: "EIO" });
  s.fs.inject("truncate", { code: "EIO" });
  await failure(s.log.append(Buffer.from("bbbbbbbb\n")));
  t.ok(s.log.isDirty);
  t.equal(await s.content(), "a\nbbbb", "the torn bytes are still there");

  s.fs.inject("truncate", { code: "EIO" });
  const writes = s.fs.counts.write;
  t.same(await failure(s.log.append(Buffer.from("c\n"))), { failure: "io_error", operation: "truncate" });
  t.equal(s.fs.counts.write, writes, "nothing is written while the tail cannot be cut");
  t.ok(s.log.isDirty);

  await s.log.append(Buffer.from("c\n"));
  t.notOk(s.log.isDirty);
  t.equal(await s.content(), "a\nc\n", "repaired, then appended");
});

t.test("opening cuts a torn last line and says how much", async (t) => {
  const s = await setup(t, '{"n":1}\n{"n":2}\n{"n":3, "torn');
  t.equal(await s.content(), '{"n":1}\n{"n":2}\n');
  t.same(s.repaired, [13]);
  t.equal(s.log.committedBytes, 16);
  await s.log.append(Buffer.from('{"n":4}\n'));
  t.equal(await s.content(), '{"n":1}\n{"n":2}\n{"n":4}\n');
});

t.test("a file without any newline is all torn; a clean one is left alone", async (t) => {
  const torn = await setup(t, "no newline at all");
  t.equal(await torn.content(), "");
  t.same(torn.repaired, [17]);
  const clean = await setup(t, "x\n");
  t.same(clean.repaired, []);
  t.equal(clean.log.created, false);
});

t.test("opening fails with a StorageWriteError when the file cannot be opened", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "postern-append-log-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const fs = new FaultyFileSystem();
  fs.inject("open", { code: "ENOSPC" });
  t.same(await failure(AppendLog.open(fs, join(dir, "x.jsonl"))), { failure: "no_space", operation: "open" });
});

t.test("on the real file system each write is durable by itself (O_DSYNC): an append is one write, no fsync after it", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "postern-append-log-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, "durable.jsonl");
  const calls = { write: 0, sync: 0 };
  const counting: StorageFileSystem = {
    ...nodeFileSystem,
    async openFile(at) {
      const { file, created } = await nodeFileSystem.openFile(at);
      const counted: StorageFile = {
        writesAreDurable: file.writesAreDurable,
        write: (...a) => ((calls.write += 1), file.write(...a)),
        sync: () => ((calls.sync += 1), file.sync()),
        read: (...a) => file.read(...a),
        truncate: (n) => file.truncate(n),
        size: () => file.size(),
        close: () => file.close(),
      };
      return { file: counted, created };
    },
  };
  const log = await AppendLog.open(counting, path);
  t.teardown(() => log.close());
  const syncsOnOpen = calls.sync;
  await log.append(Buffer.from("one\ntwo\n"));
  t.equal(await readFile(path, "utf8"), "one\ntwo\n");
  t.same({ write: calls.write, sync: calls.sync - syncsOnOpen }, { write: 1, sync: 0 });

  if (process.platform !== "linux") return void t.comment("skipped the kernel's view of the flags: /proc/self/fdinfo is Linux's");
  // What the kernel says the open file is, not what our code believes it asked for.
  const flags: number[] = [];
  for (const fd of await readdir("/proc/self/fd")) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => "");
    if (target !== path) continue;
    const info = await readFile(`/proc/self/fdinfo/${fd}`, "utf8");
    flags.push(Number.parseInt(/^flags:\s+([0-7]+)/m.exec(info)![1]!, 8));
  }
  t.equal(flags.length, 1, "the log holds the file open once");
  t.ok((flags[0]! & constants.O_DSYNC) !== 0, "opened with O_DSYNC");
});
