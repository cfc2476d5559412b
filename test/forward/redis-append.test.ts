import t from "tap";
import { backendSchema, configSchema } from "../../src/config/schema.js";
import { claimAndAppendScript, streamAppendArguments } from "../../src/forward/redis-append.js";

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

t.test("script arguments: the certificate once, then the group's and the templated stream's names", async (t) => {
  const key = "p:{b}:s";
  const certificatesKey = "p:{b}:meta:client-certs";
  const kept = { thumbprint: "T", der: "" as const };
  t.same(streamAppendArguments({ key, certificatesKey, trim: { strategy: "maxlen", maxLength: 7, approximate: true } }, kept), ["T", ""]);
  t.same(
    streamAppendArguments({ key, certificatesKey, trim: { strategy: "none" } }, { thumbprint: "T", der: new Uint8Array([1, 2]) }),
    ["T", Buffer.from([1, 2])],
    "a certificate not yet kept travels as its DER",
  );
  const full = {
    key,
    certificatesKey,
    trim: { strategy: "none" as const },
    consumerGroup: "workers",
    backpressure: { maxBacklog: 5, maxGroupLag: 9, retryAfterSeconds: 2 },
    names: { key: "p:{b}:meta:streams", stream: "s", maxStreams: 3 },
  };
  t.same(streamAppendArguments(full, kept), ["T", "", "workers", "s"]);
  t.same(streamAppendArguments({ ...full, consumerGroup: undefined, backpressure: undefined }, kept), ["T", "", "s"]);
});

t.test("one script per stream shape, with its limits written in and nothing it has no use for", async (t) => {
  const base = { key: "p:{b}:s", certificatesKey: "p:{b}:meta:client-certs" };
  const plain = claimAndAppendScript({ ...base, trim: { strategy: "maxlen", maxLength: 1_000_000, approximate: true } });
  t.equal(claimAndAppendScript({ ...base, key: "p:{b}:other", trim: { strategy: "maxlen", maxLength: 1_000_000, approximate: true } }), plain, "another stream of the same shape shares it");
  t.match(plain.lua, /'XADD', stream, 'MAXLEN', '~', '1000000', '\*', unpack\(ARGV, 6\)\)/);
  for (const unused of ["'XLEN'", "'XINFO'", "'SISMEMBER'", "'TIME'"]) t.notOk(plain.lua.includes(unused), `the default shape has no ${unused}`);
  const exact = claimAndAppendScript({ ...base, trim: { strategy: "maxlen", maxLength: 1_000_000, approximate: false } });
  t.not(exact.name, plain.name, "a different shape is a different command");
  t.match(exact.lua, /'MAXLEN', '=', '1000000'/);
  const minid = claimAndAppendScript({ ...base, trim: { strategy: "minid", maxAgeSeconds: 3, approximate: false } });
  t.match(minid.lua, /'MINID', '=', string\.format\('%\.0f', nowMs - 3000\)/);
  const full = claimAndAppendScript({
    ...base,
    trim: { strategy: "none" },
    consumerGroup: "workers",
    backpressure: { maxBacklog: 5, maxGroupLag: 9, retryAfterSeconds: 2 },
    names: { key: "p:{b}:meta:streams", stream: "s", maxStreams: 3 },
  });
  t.match(full.lua, /if count >= 3 then return \{'limit'/);
  t.match(full.lua, /if length >= 5 then return \{'full', 'backlog'/);
  t.match(full.lua, /if lag >= 9 then return \{'full', 'lag'/);
  t.match(full.lua, /local group = ARGV\[6\]/);
  t.match(full.lua, /SISMEMBER', KEYS\[4\], ARGV\[7\]/);
  t.match(full.lua, /'XADD', stream, '\*', unpack\(ARGV, 8\)\)/);
  t.notOk(claimAndAppendScript({ ...base, trim: { strategy: "none" }, consumerGroup: "workers" }).lua.includes("XREVRANGE"), "no lag check without maxGroupLag");
  t.throws(() => claimAndAppendScript({ ...base, trim: { strategy: "maxlen", maxLength: 1.5, approximate: true } }), /not an integer/);
});

t.test("maxStreams: default 256, a positive integer up to 100 000", async (t) => {
  t.equal(stream({}).maxStreams, 256);
  t.equal(stream({ stream: "t-{param.x}", maxStreams: 3 }).maxStreams, 3);
  t.same(issuePaths({ maxStreams: 0 }), ["maxStreams"]);
  t.same(issuePaths({ maxStreams: 100_001 }), ["maxStreams"]);
  t.same(issuePaths({ maxStreams: 1.5 }), ["maxStreams"]);
});
