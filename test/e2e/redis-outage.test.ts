import { Redis } from "ioredis";
import t from "tap";
import { startGateway } from "../helpers/gateway.js";
import { startOwnRedis } from "../helpers/redis-server.js";

t.test("Redis stopped mid-load: only 503s while down, every 202 has its entry, 202s again after", async (t) => {
  const own = await startOwnRedis();
  const gw = await startGateway({ redis: { url: own.url, keyPrefix: "postern:", commandTimeoutSeconds: 1 } });
  t.teardown(async () => {
    await gw.stop();
    await own.destroy();
  });
  const client = await gw.client();
  const accepted: string[] = [];
  const outcomes = { before: new Map<string, number>(), during: new Map<string, number>(), after: new Map<string, number>() };
  let phase: keyof typeof outcomes = "before";

  const send = async () => {
    const answer = await client.dispatch(client.prepare("/v1/messages/orders", JSON.stringify({ at: Date.now() })));
    const body = answer.body as { id?: string; code?: string };
    const key = answer.status === 202 ? "202" : `${answer.status} ${body.code}`;
    const counts = outcomes[phase];
    counts.set(key, (counts.get(key) ?? 0) + 1);
    if (answer.status === 202) accepted.push(body.id!);
    return answer.status;
  };
  // Bounded load: 4 concurrent senders, each loop stops when its phase's goal is met.
  const load = async (until: () => boolean) => {
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (!until()) await send();
    }));
  };

  const startedBefore = Date.now();
  await load(() => Date.now() - startedBefore > 500);
  await own.stop();
  phase = "during";
  const startedDuring = Date.now();
  await load(() => Date.now() - startedDuring > 1500);
  await own.start();
  phase = "after";
  const deadline = Date.now() + 15_000;
  let lastStatus = 0;
  while (Date.now() < deadline && lastStatus !== 202) {
    lastStatus = await send();
    if (lastStatus !== 202) await new Promise((r) => setTimeout(r, 100));
  }
  const startedAfter = Date.now();
  await load(() => Date.now() - startedAfter > 300);

  t.ok((outcomes.before.get("202") ?? 0) > 0, "202s before the outage");
  const during = [...outcomes.during.keys()];
  t.same(during, ["503 replay-store-unavailable"], `only 503s while Redis is down: ${JSON.stringify([...outcomes.during])}`);
  t.ok((outcomes.after.get("202") ?? 0) > 0, "202s again after Redis is back, no gateway restart");
  const afterFailures = [...outcomes.after.entries()].filter(([k]) => k !== "202" && !k.startsWith("503"));
  t.same(afterFailures, [], "nothing but 202s and 503s after recovery");

  const redis = new Redis(own.url);
  t.teardown(() => redis.quit());
  const entries = await redis.xrange("postern:{messages}:messages", "-", "+");
  const ids = new Set(entries.map(([, flat]) => flat[flat.indexOf("message-id") + 1]));
  t.equal(entries.length, accepted.length, "one entry per 202");
  t.ok(accepted.every((id) => ids.has(id)), "no 202 without its stream entry");
  const metrics = await (await fetch(`${gw.publicUrl}/metrics`)).text();
  t.match(metrics, /postern_redis_up 1/);
});
