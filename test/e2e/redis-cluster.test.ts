import { Cluster } from "ioredis";
import t from "tap";
import { startGateway } from "../helpers/gateway.js";
import { startOwnCluster } from "../helpers/redis-server.js";

t.test("on a real Redis Cluster: claim and XADD stay atomic in one slot", async (t) => {
  const cluster = await startOwnCluster();
  t.teardown(() => cluster.destroy());
  const gw = await startGateway({ redis: { url: cluster.seeds, cluster: true } });
  t.teardown(() => gw.stop());
  const reader = new Cluster(cluster.ports.map((port) => ({ host: "127.0.0.1", port })));
  t.teardown(() => reader.disconnect());
  const client = await gw.client();
  const ids: string[] = [];
  for (let i = 0; i < 10; i++) ids.push((await client.send(`/v1/messages/t${i}`, JSON.stringify({ i }))).id);
  const message = client.prepare("/v1/messages/orders", "{}");
  const answers = await Promise.all(Array.from({ length: 50 }, () => client.dispatch(message)));
  t.equal(answers.filter((a) => a.status === 202).length, 1, "one 202 among 50 copies");
  t.equal(answers.filter((a) => a.status === 409).length, 49);
  const entries = await reader.xrange("postern:{messages}:messages", "-", "+");
  t.equal(entries.length, 11, "one entry per accepted message");
  const ready = await (await fetch(`${gw.publicUrl}/readyz`)).json();
  t.equal(ready.redis, "up");
});
