import { Redis } from "ioredis";
import t from "tap";
import { startGateway } from "../helpers/gateway.js";
import { startOwnCluster, startOwnRedis, startOwnSentinel } from "../helpers/redis-server.js";

// The file's time, as long as its tests may take together (.taprc's 120 s would cut them short).
t.setTimeout(480_000);

async function until(what: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await what().catch(() => false)) return true;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return false;
}

async function health(publicUrl: string): Promise<{ ready: number; redisUp: string | undefined }> {
  const ready = (await fetch(`${publicUrl}/readyz`)).status;
  const metrics = await (await fetch(`${publicUrl}/metrics`)).text();
  return { ready, redisUp: /^postern_redis_up (\d)/m.exec(metrics)?.[1] };
}

t.test("cluster: losing the master of a backend's slot turns readiness and redis_up down, and both recover", { timeout: 180_000 }, async (t) => {
  const cluster = await startOwnCluster();
  t.teardown(() => cluster.destroy());
  const gw = await startGateway({ redis: { url: cluster.seeds, cluster: true, commandTimeoutSeconds: 1 } });
  t.teardown(() => gw.stop());
  t.same(await health(gw.publicUrl), { ready: 200, redisUp: "1" });

  const probe = new Redis(cluster.ports[0]!, "127.0.0.1");
  const slot = Number(await probe.cluster("KEYSLOT", "postern:{messages}:health"));
  const slots = (await probe.cluster("SLOTS")) as unknown as Array<[number, number, [string, number]]>;
  probe.disconnect();
  const owner = slots.find(([from, to]) => slot >= from && slot <= to)![2][1];
  const node = cluster.nodes[cluster.ports.indexOf(owner)]!;
  await node.stop();
  t.ok(await until(async () => (await health(gw.publicUrl)).ready === 503, 30_000), "readiness turns 503");
  t.equal((await health(gw.publicUrl)).redisUp, "0", "postern_redis_up is 0");
  const client = await gw.client();
  const refused = await client.dispatch(client.prepare("/v1/messages/x", "{}"));
  t.equal(refused.status, 503, "and a message is refused");

  await node.start();
  t.ok(await until(async () => (await health(gw.publicUrl)).ready === 200, 60_000), "readiness recovers when the master is back");
  t.equal((await health(gw.publicUrl)).redisUp, "1");
  t.equal((await client.send("/v1/messages/x", "{}")).status, 202);
});

t.test("waitReplicas: a 202 waits for the replica; without it, 503 replication-timeout, and the same bytes succeed later", { timeout: 120_000 }, async (t) => {
  const master = await startOwnRedis();
  t.teardown(() => master.destroy());
  const replica = await startOwnRedis(["--replicaof", "127.0.0.1", String(master.port)]);
  t.teardown(() => replica.destroy());
  const admin = new Redis(master.url);
  t.teardown(() => admin.quit());
  t.ok(await until(async () => /slave0:.*state=online/.test(await admin.info("replication")), 20_000), "the replica is attached and in sync");

  const gw = await startGateway({ redis: { url: master.url, waitReplicas: { replicas: 1, timeoutMs: 300 } } });
  t.teardown(() => gw.stop());
  const client = await gw.client();
  t.equal((await client.send("/v1/messages/r", "{}")).status, 202, "with the replica up: 202");

  replica.signal("SIGSTOP");
  const message = client.prepare("/v1/messages/r", JSON.stringify({ n: 2 }));
  const answer = await client.dispatch(message);
  t.equal(answer.status, 503);
  t.equal((answer.body as { code: string }).code, "replication-timeout");
  replica.signal("SIGCONT");
  t.ok(
    await until(async () => {
      const again = await client.dispatch(message);
      return again.status === 409 && typeof (again.body as { messageId?: string }).messageId === "string";
    }, 20_000),
    "once the replica has it, the same bytes are confirmed as the accepted original",
  );
  const entries = await admin.xrange("postern:{messages}:messages", "-", "+");
  t.equal(entries.length, 2, "and it is stored once");
});

t.test("Sentinel: the gateway finds the master through Sentinel and follows a failover", { timeout: 180_000 }, async (t) => {
  const master = await startOwnRedis();
  t.teardown(() => master.destroy());
  const replica = await startOwnRedis(["--replicaof", "127.0.0.1", String(master.port)]);
  t.teardown(() => replica.destroy());
  const watcher = new Redis(master.url);
  t.ok(await until(async () => /slave0:.*state=online/.test(await watcher.info("replication")), 20_000), "the replica is attached and in sync");
  watcher.disconnect();
  const sentinel = await startOwnSentinel(master.port);
  t.teardown(() => sentinel.destroy());
  // Sentinel learns about the replica from the master's INFO (every 10 s at first).
  const asker = new Redis(sentinel.port, "127.0.0.1");
  t.teardown(() => asker.disconnect());
  t.ok(await until(async () => ((await asker.call("SENTINEL", "REPLICAS", "mymaster")) as unknown[]).length === 1, 30_000), "Sentinel knows the replica");

  const gw = await startGateway({ redis: { sentinel: { masterName: "mymaster", nodes: [`127.0.0.1:${sentinel.port}`] }, waitReplicas: { replicas: 1, timeoutMs: 1000 } } });
  t.teardown(() => gw.stop());
  const client = await gw.client("demo-client", { attempts: 1 });
  const first = await client.send("/v1/messages/s", JSON.stringify({ n: 1 }));
  t.equal(first.status, 202, "served through the master Sentinel names");

  await master.stop();
  t.ok(
    await until(async () => {
      const addr = (await asker.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")) as string[];
      return Number(addr[1]) === replica.port;
    }, 60_000),
    "Sentinel promotes the replica",
  );
  const meanwhile = await client.dispatch(client.prepare("/v1/messages/s", "{}"));
  // Reconnecting through Sentinel (nothing sent) or connected with no replica to confirm: either way, no 202.
  t.match(meanwhile, { status: 503, body: { code: /^(replication-timeout|replay-store-unavailable)$/ } }, "with no replica left, nothing is acknowledged");
  await master.start(); // Sentinel turns the old master into a replica of the new one
  t.ok(await until(async () => (await client.dispatch(client.prepare("/v1/messages/s", "{}"))).status === 202, 60_000), "the gateway follows the new master");
  const promoted = new Redis(replica.url);
  t.teardown(() => promoted.quit());
  const entries = await promoted.xrange("postern:{messages}:messages", "-", "+");
  t.ok(entries.some(([, fields]) => fields.includes(first.id)), "the message accepted before the failover is on the new master");
  t.equal((await fetch(`${gw.publicUrl}/readyz`)).status, 200);
});
