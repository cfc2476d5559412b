import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import t from "tap";
import { useTestRedis } from "../helpers/redis.js";
import { fieldsOf, parseJwks, verifyStreamEntry } from "../../src/consumer/index.js";
import { finished, spawnTs } from "../helpers/process.js";
import { startGateway, TEST_REDIS_URL } from "../helpers/gateway.js";

t.test("a consumer group reads exactly the entries that 202s promised, and each verifies", async (t) => {
  const { redis, keyPrefix } = await useTestRedis(t);
  const gw = await startGateway({ redis: { url: TEST_REDIS_URL, keyPrefix } });
  t.teardown(() => gw.stop());
  const stream = `${keyPrefix}{messages}:messages`;
  await redis.xgroup("CREATE", stream, "workers", "$", "MKSTREAM");
  const client = await gw.client();
  const accepted = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const result = await client.send(`/v1/messages/orders?i=${i}`, JSON.stringify({ i }));
    accepted.add(result.id);
  }
  // Refused messages must leave no entry.
  const replay = client.prepare("/v1/messages/orders", "{}");
  await client.dispatch(replay);
  accepted.add(((await client.dispatch(replay)).body as { messageId: string }).messageId);
  await client.dispatch({ ...client.prepare("/v1/messages/orders", "{}"), body: Buffer.from("{ }") });

  const keys = parseJwks(await (await fetch(`${gw.publicUrl}/.well-known/postern-keys`)).json());
  const seen: string[] = [];
  for (;;) {
    const batch = (await redis.callBuffer("XREADGROUP", "GROUP", "workers", "consumer-1", "COUNT", 8, "STREAMS", stream, ">")) as
      | Array<[Buffer, Array<[Buffer, Buffer[]]>]>
      | null;
    const entries = batch?.[0]?.[1] ?? [];
    if (entries.length === 0) break;
    for (const [id, flat] of entries) {
      const verdict = verifyStreamEntry(fieldsOf(flat), { keys });
      t.ok(verdict.ok, `entry ${id} verifies`);
      if (verdict.ok) seen.push(verdict.messageId);
      await redis.xack(stream, "workers", id);
    }
  }
  t.same(new Set(seen), accepted, "one entry per accepted message");
  t.equal(seen.length, accepted.size, "none extra");
});

t.test("postern verify accepts an untouched entry and refuses it after any field changes", async (t) => {
  const { redis, keyPrefix } = await useTestRedis(t);
  const gw = await startGateway({ redis: { url: TEST_REDIS_URL, keyPrefix } });
  t.teardown(() => gw.stop());
  const stream = `${keyPrefix}{messages}:messages`;
  const client = await gw.client();
  await client.send("/v1/messages/orders?x=1", '{"amount":10}');
  const [[entryId, flat]] = (await redis.xrangeBuffer(stream, "-", "+")) as [[Buffer, Buffer[]]];
  const jwks = `${gw.publicUrl}/.well-known/postern-keys`;

  const ok = await finished(
    spawnTs("src/cli/main.ts", ["verify", "--jwks", jwks, "--redis", TEST_REDIS_URL, "--stream", stream, "--id", entryId.toString()]),
  );
  t.equal(ok.code, 0, ok.stdout + ok.stderr);
  t.match(ok.stdout, /^OK message /);

  const keys = parseJwks(await (await fetch(jwks)).json());
  const fields = fieldsOf(flat);
  t.ok(verifyStreamEntry(fields, { keys }).ok);
  for (const name of Object.keys(fields)) {
    const value = fields[name]!;
    const changed = Buffer.from(value);
    const at = changed.length > 12 ? 12 : 0;
    changed[at] = changed[at]! ^ 0x01;
    const verdict = verifyStreamEntry({ ...fields, [name]: changed }, { keys });
    t.notOk(verdict.ok, `changing ${name} fails verification`);
  }
  t.notOk(verifyStreamEntry({ ...fields, extra: "x" }, { keys }).ok, "an added field fails");

  // The CLI on a tampered entry: write it to a file and verify that.
  const tampered = { ...Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v.toString()])), body: '{"amount":99}' };
  const file = join(gw.dir, "tampered.json");
  await writeFile(file, JSON.stringify({ id: entryId.toString(), fields: tampered }));
  const bad = await finished(spawnTs("src/cli/main.ts", ["verify", "--jwks", jwks, "--entry", file]));
  t.equal(bad.code, 1);
  t.match(bad.stdout, /^FAILED digest-mismatch/);
});

t.test("postern verify reads the embedded backend's file", async (t) => {
  const gw = await startGateway();
  t.teardown(() => gw.stop());
  const client = await gw.client();
  const sent = await client.send("/v1/messages/orders", '{"file":true}');
  const result = await finished(
    spawnTs("src/cli/main.ts", [
      "verify",
      "--jwks",
      `${gw.publicUrl}/.well-known/postern-keys`,
      "--entry",
      join(gw.dir, "data", "messages.jsonl"),
    ]),
  );
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, sent.id);
});
