import t from "tap";
import { ClusterChannel, type ChannelEnd } from "../../src/app/cluster-rpc.js";
import { PosternError } from "../../src/errors.js";

/** Two channel ends joined in memory, delivering asynchronously as a pipe does; counts what crosses. */
function pair(): { a: ClusterChannel; b: ClusterChannel; sent: { a: number; b: number }; close(): void } {
  const listeners: Record<"a" | "b", Array<(m: unknown) => void>> = { a: [], b: [] };
  const closers: Array<() => void> = [];
  const sent = { a: 0, b: 0 };
  const end = (self: "a" | "b", other: "a" | "b"): ChannelEnd => ({
    send: (message) => {
      sent[self] += 1;
      const copy = JSON.parse(JSON.stringify(message)) as unknown;
      setImmediate(() => listeners[other].forEach((l) => l(copy)));
    },
    onMessage: (listener) => listeners[self].push(listener),
    onClose: (listener) => closers.push(listener),
  });
  return { a: new ClusterChannel(end("a", "b")), b: new ClusterChannel(end("b", "a")), sent, close: () => closers.forEach((c) => c()) };
}

t.test("calls made in one turn travel as one message each way, answers matched by id", async (t) => {
  const { a, b, sent } = pair();
  b.handle("double", async ({ n }: { n: number }) => n * 2);
  const answers = await Promise.all(Array.from({ length: 50 }, (_, n) => a.call<number>("double", { n })));
  t.same(answers, Array.from({ length: 50 }, (_, n) => n * 2));
  t.equal(sent.a, 1, "50 calls, one message out");
  t.equal(sent.b, 1, "50 answers, one message back");
});

t.test("a PosternError crosses with its code and extensions; any other error as its message only", async (t) => {
  const { a, b } = pair();
  b.handle("full", () => {
    throw new PosternError("storage-unavailable", "disk full", { extensions: { retryAfterSeconds: 2 } });
  });
  b.handle("bug", () => {
    throw new TypeError("oops");
  });
  const error = await a.call("full", null).catch((e: unknown) => e);
  t.ok(error instanceof PosternError);
  t.equal((error as PosternError).code, "storage-unavailable");
  t.same((error as PosternError).extensions, { retryAfterSeconds: 2 });
  const other = await a.call("bug", null).catch((e: unknown) => e);
  t.notOk(other instanceof PosternError, "not dressed up as a Postern error");
  t.equal((other as Error).message, "oops");
  await t.rejects(a.call("nobody", null), { code: "internal" }, "an unknown operation is an error, not a hang");
});

t.test("notes need no answer; a closed channel fails what is pending and refuses new calls", async (t) => {
  const { a, b, close } = pair();
  const seen: unknown[] = [];
  b.handle("revoked", (args) => void seen.push(args));
  a.notify("revoked", { serial: "01" });
  b.handle("never", () => new Promise(() => undefined));
  const pending = a.call("never", null);
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.same(seen, [{ serial: "01" }], "the note arrived");
  close();
  await t.rejects(pending, { code: "internal" }, "pending call fails when the other end goes");
  await t.rejects(a.call("never", null), { code: "internal" }, "and new calls are refused");
});

t.test("a call with a timeout fails after it when no answer comes", async (t) => {
  const { a, b } = pair();
  b.handle("slow", () => new Promise(() => undefined));
  await t.rejects(a.call("slow", null, 50), { code: "internal" });
});
