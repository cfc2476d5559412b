import t, { type Test } from "tap";
import { useTestRedis } from "../helpers/redis.js";
import {
  claimStale,
  deadLetter,
  deliveryCount,
  fieldsOf,
  originalFields,
  parseJwks,
  readNew,
  verifyStreamEntry,
  type StreamEntry,
} from "../../src/consumer/index.js";
import { startGateway, TEST_REDIS_URL } from "../helpers/gateway.js";

const testRedis = (t: Test) => useTestRedis(t);

const pendingCount = async (redis: Awaited<ReturnType<typeof useTestRedis>>["redis"], stream: string, group: string) => ((await redis.xpending(stream, group)) as [number])[0];

t.test("claimStale takes over idle entries, counting deliveries, with binary-safe fields", async (t) => {
  const { redis, keyPrefix } = await testRedis(t);
  const stream = `${keyPrefix}{c}:s`;
  await redis.xgroup("CREATE", stream, "g", "$", "MKSTREAM");
  const body = Buffer.from([0xff, 0x00, 0xfe]);
  await redis.xadd(stream, "*", "message-id", "m1", "body", body);
  const [first] = await readNew({ redis, stream, group: "g", consumer: "a", count: 10 });
  t.equal(first!.fields["message-id"]!.toString(), "m1");
  t.same(first!.fields.body, body);
  t.equal(await deliveryCount({ redis, stream, group: "g", id: first!.id }), 1);
  t.same(await readNew({ redis, stream, group: "g", consumer: "a", count: 10 }), [], "nothing new");

  const none = await claimStale({ redis, stream, group: "g", consumer: "b", minIdleMs: 60_000, count: 10 });
  t.same(none.entries, [], "not idle long enough");
  await new Promise((r) => setTimeout(r, 20));
  const stale = await claimStale({ redis, stream, group: "g", consumer: "b", minIdleMs: 10, count: 10 });
  t.equal(stale.nextStart, "0-0");
  t.same(stale.entries.map((e) => e.id), [first!.id]);
  t.same(stale.entries[0]!.fields.body, body);
  t.equal(await deliveryCount({ redis, stream, group: "g", id: first!.id }), 2);
  t.equal(await deliveryCount({ redis, stream, group: "g", id: "0-1" }), 0, "not pending");
});

t.test("deadLetter moves an entry and acks it in one step, once", async (t) => {
  const { redis, keyPrefix } = await testRedis(t);
  const stream = `${keyPrefix}{c}:s`;
  await redis.xgroup("CREATE", stream, "g", "$", "MKSTREAM");
  await redis.xadd(stream, "*", "message-id", "m1", "body", "x");
  await redis.xadd(stream, "*", "message-id", "m2", "body", "y");
  const [e1, e2] = (await readNew({ redis, stream, group: "g", consumer: "a", count: 10 })) as [StreamEntry, StreamEntry];

  const moved = await deadLetter({ redis, stream, group: "g", id: e1.id, fields: e1.fields, reason: "handler-failed" });
  t.type(moved, "string");
  t.equal(await deadLetter({ redis, stream, group: "g", id: e1.id, fields: e1.fields, reason: "again" }), undefined, "no longer pending: no second dead letter");
  const dead = await redis.xrange(`${stream}:dead`, "-", "+");
  t.equal(dead.length, 1);
  t.same(Object.fromEntries(Object.entries(fieldsOf(dead[0]![1])).map(([k, v]) => [k, v.toString()])), {
    "message-id": "m1",
    body: "x",
    "dead-letter-reason": "handler-failed",
    "dead-letter-from": stream,
    "dead-letter-id": e1.id,
    "delivery-count": "1",
  });
  t.same(originalFields(fieldsOf(dead[0]![1])), { "message-id": "m1", body: "x" });
  t.equal(await pendingCount(redis, stream, "g"), 1, "e1 acked, e2 still pending");
  t.equal(await redis.xlen(stream), 2, "the original stays by default");

  await deadLetter({ redis, stream, group: "g", id: e2.id, fields: e2.fields, reason: "r", deleteOriginal: true, deliveryCount: 9 });
  t.equal(await pendingCount(redis, stream, "g"), 0, "XPENDING shows none");
  t.equal(await redis.xlen(stream), 1, "deleteOriginal frees room");
  const last = (await redis.xrevrange(`${stream}:dead`, "+", "-", "COUNT", 1))[0]![1];
  t.equal(last[last.indexOf("delivery-count") + 1], "9");

  await t.rejects(
    deadLetter({ redis, stream, group: "g", id: e2.id, fields: e2.fields, reason: "r", deadLetterStream: `${keyPrefix}{other}:dead` }),
    { code: "bad-request" },
    "another hash slot is refused before anything is written",
  );
});

t.test("the readWithRetries pattern on gateway entries: forged and failing entries end in the dead-letter stream", async (t) => {
  const { redis, keyPrefix } = await useTestRedis(t);
  const gw = await startGateway({
    redis: { url: TEST_REDIS_URL, keyPrefix },
    backends: { messages: { type: "stream", consumerGroup: "workers" } },
  });
  t.teardown(() => gw.stop());
  const stream = `${keyPrefix}{messages}:messages`;
  const group = "workers";
  const keys = parseJwks(await (await fetch(`${gw.publicUrl}/.well-known/postern-keys`)).json());
  const client = await gw.client();
  const good = await client.send("/v1/messages/t", '{"ok":true}');
  const poison = await client.send("/v1/messages/t", '{"poison":true}');
  const [, flat] = (await redis.xrangeBuffer(stream, "-", "+", "COUNT", 1))[0]!;
  await redis.xadd(stream, "*", ...Object.entries({ ...fieldsOf(flat), body: '{"ok":false}' }).flat());

  const handled: string[] = [];
  const maxDeliveries = 3;
  for (let round = 0; round < maxDeliveries + 1; round++) {
    const stale = await claimStale({ redis, stream, group, consumer: "c1", minIdleMs: 0, count: 16 });
    const fresh = await readNew({ redis, stream, group, consumer: "c1", count: 16 });
    for (const { id, fields } of [...stale.entries, ...fresh]) {
      const verdict = verifyStreamEntry(fields, { keys });
      if (!verdict.ok) {
        await deadLetter({ redis, stream, group, id, fields, reason: verdict.code });
        continue;
      }
      try {
        if (verdict.body.toString().includes("poison")) throw new Error("cannot handle");
        handled.push(verdict.messageId);
        await redis.xack(stream, group, id);
      } catch {
        if ((await deliveryCount({ redis, stream, group, id })) >= maxDeliveries) {
          await deadLetter({ redis, stream, group, id, fields, reason: "handler-failed" });
        }
      }
    }
  }
  t.same(handled, [good.id]);
  t.equal(await pendingCount(redis, stream, group), 0, "nothing left pending");
  const dead = (await redis.xrangeBuffer(`${stream}:dead`, "-", "+")).map(([, f]) => fieldsOf(f));
  t.same(dead.map((f) => f["dead-letter-reason"]!.toString()).sort(), ["digest-mismatch", "handler-failed"]);
  const failed = dead.find((f) => f["dead-letter-reason"]!.toString() === "handler-failed")!;
  t.equal(failed["delivery-count"]!.toString(), String(maxDeliveries));
  t.notOk(verifyStreamEntry(failed, { keys }).ok, "a dead letter is not a gateway entry");
  const original = verifyStreamEntry(originalFields(failed), { keys });
  t.ok(original.ok && original.messageId === poison.id, "without the dead-letter fields it verifies again");
});
