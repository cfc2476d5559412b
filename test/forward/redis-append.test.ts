import t from "tap";
import { backendSchema, configSchema } from "../../src/config/schema.js";
import { streamAppendArguments } from "../../src/forward/redis-append.js";

const parse = (extra: Record<string, unknown>) => backendSchema.safeParse({ type: "stream", ...extra });
const stream = (extra: Record<string, unknown>) => {
  const result = parse(extra);
  if (!result.success || result.data.type !== "stream") throw new Error(JSON.stringify(result.error?.issues));
  return result.data;
};
const issuePaths = (extra: Record<string, unknown>) => {
  const result = parse(extra);
  return result.success ? [] : result.error.issues.map((i) => i.path.join("."));
};

t.test("trim: default MAXLEN ~ 1 000 000; maxlen and minid with approximate or exact", async (t) => {
  t.same(stream({}).trim, { strategy: "maxlen", maxLength: 1_000_000, approximate: true });
  t.same(stream({ trim: { strategy: "maxlen", maxLength: 10, approximate: false } }).trim, { strategy: "maxlen", maxLength: 10, approximate: false });
  t.same(stream({ trim: { strategy: "minid", maxAgeSeconds: 60 } }).trim, { strategy: "minid", maxAgeSeconds: 60, approximate: true });
  t.same(stream({ trim: { strategy: "none" } }).trim, { strategy: "none" });
  t.same(issuePaths({ trim: { strategy: "maxlen", maxLength: 0 } }), ["trim.maxLength"]);
  t.same(issuePaths({ trim: { strategy: "minid" } }), ["trim.maxAgeSeconds"]);
  t.same(issuePaths({ trim: { strategy: "minid", maxAgeSeconds: 1, maxLength: 3 } }), ["trim"], "unknown keys refused");
});

t.test("the default backends parse to the same shape as an explicit one", async (t) => {
  const config = configSchema.parse({});
  t.same(config.backends.messages, stream({ stream: "messages" }));
});

t.test("stream templates, consumer group and backpressure are checked", async (t) => {
  t.equal(stream({ stream: "orders-{param.topic}" }).stream, "orders-{param.topic}");
  t.same(issuePaths({ stream: "orders:{param.topic}" }), ["stream"]);
  t.same(issuePaths({ stream: "{tenant}" }), ["stream"]);
  t.same(issuePaths({ backpressure: {} }), ["backpressure"], "a limit is required");
  t.same(issuePaths({ backpressure: { maxGroupLag: 5 } }), ["backpressure.maxGroupLag"], "lag needs a group");
  t.same(stream({ consumerGroup: "workers", backpressure: { maxGroupLag: 5 } }).backpressure, { maxGroupLag: 5, retryAfterSeconds: 5 });
  t.same(issuePaths({ consumerGroup: "a b" }), ["consumerGroup"]);
});

t.test("script arguments: trim strategy, value, operator, group, limits, the certificate once", async (t) => {
  const key = "p:{b}:s";
  const certificatesKey = "p:{b}:meta:client-certs";
  const kept = { thumbprint: "T", der: "" as const };
  t.same(streamAppendArguments({ key, certificatesKey, trim: { strategy: "maxlen", maxLength: 7, approximate: true } }, kept), ["maxlen", 7, "~", "", 0, 0, "", 0, "T", ""]);
  t.same(streamAppendArguments({ key, certificatesKey, trim: { strategy: "minid", maxAgeSeconds: 3, approximate: false } }, kept), ["minid", 3000, "=", "", 0, 0, "", 0, "T", ""]);
  t.same(
    streamAppendArguments({ key, certificatesKey, trim: { strategy: "none" } }, { thumbprint: "T", der: new Uint8Array([1, 2]) }).slice(-2),
    ["T", Buffer.from([1, 2])],
    "a certificate not yet kept travels as its DER",
  );
  t.same(
    streamAppendArguments({
      key,
      certificatesKey,
      trim: { strategy: "none" },
      consumerGroup: "workers",
      backpressure: { maxBacklog: 5, maxGroupLag: 9, retryAfterSeconds: 2 },
      names: { key: "p:{b}:meta:streams", stream: "s", maxStreams: 3 },
    }, kept),
    ["none", 0, "=", "workers", 5, 9, "s", 3, "T", ""],
  );
});

t.test("maxStreams: default 256, a positive integer up to 100 000", async (t) => {
  t.equal(stream({}).maxStreams, 256);
  t.equal(stream({ stream: "t-{param.x}", maxStreams: 3 }).maxStreams, 3);
  t.same(issuePaths({ maxStreams: 0 }), ["maxStreams"]);
  t.same(issuePaths({ maxStreams: 100_001 }), ["maxStreams"]);
  t.same(issuePaths({ maxStreams: 1.5 }), ["maxStreams"]);
});
