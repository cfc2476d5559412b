import t from "tap";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DurableAppender, readStateFile, writeFileAtomic } from "../../src/storage/atomic-file.js";
import { runAndKill } from "../pki/store/store-contract.js";

const dir = mkdtempSync(join(tmpdir(), "postern-atomic-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test("writeFileAtomic replaces the file, private by default, leaving no temp file", async (t) => {
  const path = join(dir, "a.txt");
  await writeFileAtomic(path, "one");
  await writeFileAtomic(path, [new TextEncoder().encode("two "), "chunks"]);
  t.equal(readFileSync(path, "utf8"), "two chunks");
  t.equal(statSync(path).mode & 0o777, 0o600);
  await writeFileAtomic(join(dir, "pub.txt"), "x", { mode: 0o644 });
  t.equal(statSync(join(dir, "pub.txt")).mode & 0o777, 0o644);
  t.same(readdirSync(dir).filter((f) => f.endsWith(".tmp")), []);
});

t.test("a failed rename leaves the target untouched and removes the temp file", async (t) => {
  const target = join(dir, "is-a-dir");
  mkdirSync(join(target, "child"), { recursive: true });
  await t.rejects(writeFileAtomic(target, "data"));
  t.ok(statSync(target).isDirectory());
  t.same(readdirSync(dir).filter((f) => f.endsWith(".tmp")), []);
});

t.test("DurableAppender keeps the order of concurrent appends", async (t) => {
  const path = join(dir, "log.jsonl");
  const app = await DurableAppender.open(path);
  await Promise.all(Array.from({ length: 200 }, (_, i) => app.append(`${i}\n`)));
  await app.close();
  t.same(readFileSync(path, "utf8").trim().split("\n").map(Number), Array.from({ length: 200 }, (_, i) => i));
});

t.test("kill -9 during writeFileAtomic leaves a complete version, never older than acknowledged", async (t) => {
  const sub = mkdtempSync(join(dir, "kill-"));
  const acked = await runAndKill("atomic", sub, /^version /gm, 30);
  const last = Math.max(...acked.map((l) => Number(l.split(" ")[1])));
  const text = readFileSync(join(sub, "state.txt"), "utf8");
  const m = /^version (\d+)\nx{200000}\nend (\d+)\n$/.exec(text);
  t.ok(m, "file is one complete version");
  t.equal(m?.[1], m?.[2]);
  t.ok(Number(m?.[1]) >= last, `version ${m?.[1]} >= last acknowledged ${last}`);
});

t.test("readStateFile: undefined without a file, the parsed value, internal naming the file when damaged", async (t) => {
  const path = join(dir, "state.json");
  const parse = (value: unknown) => {
    if (typeof (value as { version?: unknown }).version !== "number") throw new Error("no version");
    return value as { version: number };
  };
  t.equal(await readStateFile(path, parse), undefined, "no file: nothing recorded yet");
  await writeFileAtomic(path, JSON.stringify({ version: 2 }));
  t.same(await readStateFile(path, parse), { version: 2 });
  for (const [text, reason] of [["{torn", /is damaged: .*JSON/], [JSON.stringify({ other: 1 }), /is damaged: no version/]] as const) {
    await writeFileAtomic(path, text);
    await t.rejects(readStateFile(path, parse), { code: "internal", message: new RegExp(`${path.replace(/[.]/g, "\\.")} ${reason.source}`) }, text);
  }
  mkdirSync(join(dir, "a-directory.json"));
  await t.rejects(readStateFile(join(dir, "a-directory.json"), parse), { code: "EISDIR" }, "other read errors are not hidden");
});
