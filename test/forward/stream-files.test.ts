import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import t from "tap";
import { startGateway } from "../helpers/gateway.js";

const lines = async (path: string) => (await readFile(path, "utf8")).trim().split("\n").map((l) => JSON.parse(l) as { id: string; fields: Record<string, string> });

t.test("embedded mode: one fsynced file per resolved stream name", async (t) => {
  const gw = await startGateway({ backends: { messages: { type: "stream", stream: "orders-{param.topic}" } } });
  t.teardown(() => gw.stop());
  const client = await gw.client();
  const eu = await client.send("/v1/messages/eu", '{"n":1}');
  await client.send("/v1/messages/us", '{"n":2}');
  await client.send("/v1/messages/eu", '{"n":3}');
  const dir = join(gw.dir, "data", "messages");
  t.same((await readdir(dir)).sort(), ["orders-eu.jsonl", "orders-us.jsonl"]);
  const euLines = await lines(join(dir, "orders-eu.jsonl"));
  t.equal(euLines.length, 2);
  t.equal(euLines[0]!.fields["message-id"], eu.id);
  t.equal((await lines(join(dir, "orders-us.jsonl"))).length, 1);

  const bad = await client.dispatch(client.prepare("/v1/messages/a:b", "{}"));
  t.equal(bad.status, 400);
  t.equal((bad.body as { code: string }).code, "bad-request");

  // The nonce guard is the backend's, not the file's: one nonce, one message, whichever stream.
  const message = client.prepare("/v1/messages/eu", "{}");
  t.equal((await client.dispatch(message)).status, 202);
  t.equal((await client.dispatch(message)).status, 409);
  t.equal((await lines(join(dir, "orders-eu.jsonl"))).length, 3);
});

t.test("embedded mode: a fixed name keeps the one <backend>.jsonl file", async (t) => {
  const gw = await startGateway({ backends: { messages: { type: "stream", stream: "messages", trim: { strategy: "none" } } } });
  t.teardown(() => gw.stop());
  const client = await gw.client();
  await client.send("/v1/messages/eu", "{}");
  t.equal((await lines(join(gw.dir, "data", "messages.jsonl"))).length, 1);
});


t.test("embedded mode: maxStreams caps the stream files of a templated backend", async (t) => {
  const gw = await startGateway({ backends: { messages: { type: "stream", stream: "orders-{param.topic}", maxStreams: 2 } } });
  t.teardown(() => gw.stop());
  const client = await gw.client();
  await client.send("/v1/messages/a", "{}");
  await client.send("/v1/messages/b", "{}");
  const refused = await client.dispatch(client.prepare("/v1/messages/c", "{}"));
  t.equal(refused.status, 422);
  t.equal((refused.body as { code: string }).code, "stream-limit");
  t.equal((await client.send("/v1/messages/a", "{}")).status, 202, "a known name still works");

  // A duplicate or a replay towards a new name creates nothing.
  let n = 0;
  const fixed = await gw.client("demo-client", { nonce: () => `fixed-nonce-for-cap-${n}` });
  t.equal((await fixed.dispatch(fixed.prepare("/v1/messages/a", '{"v":1}'))).status, 202);
  t.equal((await fixed.dispatch(fixed.prepare("/v1/messages/z", '{"v":2}'))).status, 409);
  t.same((await readdir(join(gw.dir, "data", "messages"))).sort(), ["orders-a.jsonl", "orders-b.jsonl"]);
});
