import { Redis } from "ioredis";
import t, { type Test } from "tap";
import { useTestRedis } from "../helpers/redis.js";
import { parseConfig } from "../../src/config/load.js";
import { createConsumerGroup } from "../../src/forward/redis-append.js";
import { startGateway, TEST_REDIS_URL, type TestGateway } from "../helpers/gateway.js";

/** A gateway on the real Redis with one `messages` stream backend, and cleanup of its keys only. */
async function gatewayWith(t: Test, backend: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const { redis, keyPrefix } = await useTestRedis(t);
  let gw: TestGateway | undefined;
  t.teardown(async () => gw?.stop());
  gw = await startGateway({ redis: { url: TEST_REDIS_URL, keyPrefix }, backends: { messages: { type: "stream", ...backend } }, ...extra });
  return { gw, redis, client: await gw.client(), key: (stream: string) => `${keyPrefix}{messages}:${stream}`, keyPrefix };
}

const groupNames = async (redis: Redis, key: string) =>
  ((await redis.xinfo("GROUPS", key)) as string[][]).map((g) => g[g.indexOf("name") + 1]);

t.test("a templated stream name: one stream per path parameter, in the backend's hash slot", async (t) => {
  const { redis, client, key, keyPrefix } = await gatewayWith(t, { stream: "orders-{param.topic}", consumerGroup: "workers" });
  const eu = await client.send("/v1/messages/eu", '{"n":1}');
  await client.send("/v1/messages/us.east_1", '{"n":2}');
  await client.send("/v1/messages/eu", '{"n":3}');
  t.equal(await redis.xlen(key("orders-eu")), 2);
  t.equal(await redis.xlen(key("orders-us.east_1")), 1);
  t.same(await groupNames(redis, key("orders-eu")), ["workers"], "the group came with the stream's first entry");
  const read = (await redis.xreadgroup("GROUP", "workers", "c1", "STREAMS", key("orders-eu"), ">")) as [string, [string, string[]][]][];
  t.equal(read[0]![1].length, 2, "and it sees that first entry");
  t.equal(read[0]![1][0]![1][read[0]![1][0]![1].indexOf("message-id") + 1], eu.id);

  const nonces = async () => (await redis.keys(`${keyPrefix}{messages}:nonce:*`)).length;
  const before = await nonces();
  for (const topic of ["a:b", "a%7Bb", "%41", "x".repeat(130)]) {
    const answer = await client.dispatch(client.prepare(`/v1/messages/${topic}`, "{}"));
    t.equal(answer.status, 400, topic);
    t.equal((answer.body as { code: string }).code, "bad-request");
  }
  t.equal(await nonces(), before, "a refused name spends no nonce");
  const streams = (await redis.keys(`${keyPrefix}{messages}:*`)).filter((k) => !k.includes(":nonce:") && !k.includes(":meta:"));
  t.same(streams.sort(), [key("orders-eu"), key("orders-us.east_1")], "no stream for a refused name");
});

t.test("maxStreams caps the templated names one backend creates; existing names keep working", async (t) => {
  const { redis, client, gw, key, keyPrefix } = await gatewayWith(t, { stream: "orders-{param.topic}", maxStreams: 2 });
  const names = `${keyPrefix}{messages}:meta:streams`;
  const nonces = async () => (await redis.keys(`${keyPrefix}{messages}:nonce:*`)).length;
  await client.send("/v1/messages/a", "{}");
  await client.send("/v1/messages/b", "{}");
  const spent = await nonces();
  const refused = await client.dispatch(client.prepare("/v1/messages/c", "{}"));
  t.equal(refused.status, 422);
  t.equal((refused.body as { code: string }).code, "stream-limit");
  t.notOk(refused.headers["retry-after"], "retrying as it is cannot help");
  t.equal(await nonces(), spent, "the refused message spent no nonce");
  t.equal(await redis.exists(key("orders-c")), 0, "and created no stream");
  t.equal((await client.send("/v1/messages/a", "{}")).status, 202, "a known name still works");
  t.same((await redis.smembers(names)).sort(), ["orders-a", "orders-b"]);

  // A duplicate or a replay towards a new name is refused as such and adds no name.
  let n = 0;
  const fixed = await gw.client("demo-client", { nonce: () => `fixed-nonce-for-cap-${n}` });
  t.equal((await fixed.dispatch(fixed.prepare("/v1/messages/a", '{"v":1}'))).status, 202);
  t.equal((await fixed.dispatch(fixed.prepare("/v1/messages/z", '{"v":2}'))).status, 409);
  t.equal(await redis.exists(key("orders-z")), 0);
  t.equal(await redis.scard(names), 2);
});

t.test("{route} in a template names the stream after the route", async (t) => {
  const { redis, client, key } = await gatewayWith(t, { stream: "by-{route}" });
  await client.send("/v1/messages/x", "{}");
  t.equal(await redis.xlen(key("by-messages")), 1);
});

t.test("a template reading a parameter the route lacks is a ConfigError naming the route", async (t) => {
  t.throws(() => parseConfig({ backends: { messages: { type: "stream", stream: "t-{param.tenant}" } } }), {
    name: "ConfigError",
    message: /routes\.0\.path: backends\.messages\.stream reads \{param\.tenant\}, but \/v1\/messages\/:topic has no :tenant/,
  });
});

t.test("a fixed stream's consumer group exists at start; creating it again keeps it", async (t) => {
  const { redis, key } = await gatewayWith(t, { consumerGroup: "workers" });
  t.equal(await redis.xlen(key("messages")), 0, "MKSTREAM: empty stream");
  t.same(await groupNames(redis, key("messages")), ["workers"]);
  t.equal(await createConsumerGroup(redis, key("messages"), "workers"), true, "BUSYGROUP is success");
  await redis.set(key("not-a-stream"), "x");
  await t.rejects(createConsumerGroup(redis, key("not-a-stream"), "workers"), { code: "backend-unavailable" });
  const away = new Redis("redis://127.0.0.1:1", { lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null });
  t.teardown(() => away.disconnect());
  t.equal(await createConsumerGroup(away, key("x"), "w"), false, "Redis away: later");
});

t.test("MAXLEN trimming keeps the newest entries", async (t) => {
  const { redis, client, key } = await gatewayWith(t, { trim: { strategy: "maxlen", maxLength: 3, approximate: false } });
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) ids.push((await client.send(`/v1/messages/t`, JSON.stringify({ i }))).id);
  const entries = await redis.xrange(key("messages"), "-", "+");
  t.equal(entries.length, 3);
  t.same(entries.map(([, f]) => f[f.indexOf("message-id") + 1]), ids.slice(3));
});

t.test("MINID trimming drops entries older than maxAgeSeconds", async (t) => {
  const { redis, client, key } = await gatewayWith(t, { trim: { strategy: "minid", maxAgeSeconds: 1, approximate: false } });
  for (let i = 0; i < 3; i++) await client.send(`/v1/messages/t`, JSON.stringify({ i }));
  t.equal(await redis.xlen(key("messages")), 3, "young entries stay");
  await new Promise((r) => setTimeout(r, 1100));
  const last = await client.send(`/v1/messages/t`, "{}");
  const entries = await redis.xrange(key("messages"), "-", "+");
  t.equal(entries.length, 1, "the three old ones are gone");
  t.equal(entries[0]![1][entries[0]![1].indexOf("message-id") + 1], last.id);
});

t.test("approximate MAXLEN bounds the stream to about maxLength", async (t) => {
  // With `~` Redis drops whole nodes (100 entries by default), so XLEN stays under maxLength + 100.
  const { redis, client, key } = await gatewayWith(t, { trim: { strategy: "maxlen", maxLength: 10 } });
  await Promise.all(Array.from({ length: 150 }, (_, i) => client.send(`/v1/messages/t`, JSON.stringify({ i }))));
  const length = await redis.xlen(key("messages"));
  t.ok(length >= 10 && length < 110, `XLEN ${length}`);
});
