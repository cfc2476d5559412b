import t from "tap";
import { demoClient, startReplicaPair } from "../helpers/replica.js";

t.test("two gateway processes on one Redis: 1,000 copies of one message give one 202 and one entry", async (t) => {
  const { redis, keyPrefix, certs, first, second } = await startReplicaPair(t);
  const a = await demoClient(certs, first.port);
  const b = await demoClient(certs, second.port);
  t.teardown(() => Promise.all([a.close(), b.close()]));

  // Behind a load balancer both replicas see the same authority: sign for one, send to both.
  const message = a.prepare("/v1/messages/orders", '{"exactly":"once"}');
  const viaB = { ...message, url: message.url.replace(`:${first.port}/`, `:${second.port}/`), headers: { ...message.headers, host: `localhost:${first.port}` } };
  const answers = await Promise.all(Array.from({ length: 1000 }, (_, i) => (i % 2 ? b.dispatch(viaB) : a.dispatch(message))));

  const byStatus = new Map<number, number>();
  for (const answer of answers) byStatus.set(answer.status, (byStatus.get(answer.status) ?? 0) + 1);
  t.equal(byStatus.get(202), 1, `exactly one 202: ${JSON.stringify([...byStatus])}`);
  t.equal(byStatus.get(409), 999, "the rest are 409 replayed");
  const original = (answers.find((x) => x.status === 202)!.body as { id: string }).id;
  t.ok(
    answers.filter((x) => x.status === 409).every((x) => (x.body as { messageId?: string }).messageId === original),
    "every 409 names the original message id",
  );
  t.equal(await redis.xlen(`${keyPrefix}{messages}:messages`), 1, "exactly one stream entry");
});
