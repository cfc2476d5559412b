import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t, { type Test } from "tap";
import type { PosternClient } from "../../src/client/index.js";
import { freePort } from "../helpers/net.js";
import { demoClient, startReplica, stopReplicas, type Replica } from "../helpers/replica.js";

t.setTimeout(180_000);

/**
 * One embedded-mode gateway process at a time in `dir`, always on the same data port: a
 * signed request covers @authority, so a re-send after a restart must reach the same port.
 */
async function embeddedGateway(t: Test, extraYaml = "") {
  const dir = await mkdtemp(join(tmpdir(), "postern-restart-"));
  await writeFile(join(dir, "postern.yaml"), extraYaml);
  const port = await freePort();
  const env = { POSTERN_CONFIG: join(dir, "postern.yaml"), POSTERN_DATA_PORT: String(port), POSTERN_ADMIN_PORT: "0", POSTERN_PUBLIC_PORT: "0" };
  let running: Replica | undefined;
  const clients: PosternClient[] = [];
  t.teardown(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    if (running) await stopReplicas(running);
    await rm(dir, { recursive: true, force: true });
  });
  return {
    dir,
    async start(): Promise<PosternClient> {
      running = await startReplica(dir, env);
      const client = await demoClient(join(dir, "certs"), port);
      clients.push(client);
      return client;
    },
    async stop() {
      if (running) await stopReplicas(running);
      running = undefined;
    },
    /** kill -9: no drain, no close, nothing flushed but what was fsynced. */
    async kill() {
      const replica = running!;
      running = undefined;
      replica.child.kill("SIGKILL");
      await replica.done;
    },
  };
}

const storedIds = async (path: string) =>
  (await readFile(path, "utf8"))
    .split("\n")
    .filter(Boolean)
    .map((line) => (JSON.parse(line) as { fields: Record<string, string> }).fields["message-id"]);

t.test("embedded mode: a re-send after a restart or a kill -9 is still refused, and stored once", async (t) => {
  const gw = await embeddedGateway(t);
  const messages = join(gw.dir, "data", "messages.jsonl");

  let client = await gw.start();
  const message = client.prepare("/v1/messages/orders", JSON.stringify({ order: 1 }));
  const first = await client.dispatch(message);
  t.equal(first.status, 202);
  const id = (first.body as { id: string }).id;
  t.equal((await client.dispatch(message)).status, 409);

  await gw.stop();
  client = await gw.start();
  const afterRestart = await client.dispatch(message);
  t.equal(afterRestart.status, 409, "refused after a clean restart");
  t.equal((afterRestart.body as { code: string }).code, "replayed");
  t.equal((afterRestart.body as { messageId: string }).messageId, id, "naming the original message");
  const otherContent = await client.dispatch({ ...message, body: Buffer.from('{"order":2}') });
  t.not(otherContent.status, 202);

  const second = client.prepare("/v1/messages/orders", JSON.stringify({ order: 3 }));
  t.equal((await client.dispatch(second)).status, 202);
  await gw.kill();
  client = await gw.start();
  const afterKill = await client.dispatch(second);
  t.equal(afterKill.status, 409, "refused after kill -9 right after the 202");
  t.equal((afterKill.body as { code: string }).code, "replayed");

  const ids = await storedIds(messages);
  t.equal(ids.length, 2);
  t.equal(ids.filter((x) => x === id).length, 1, "the first message is in the file once");
});

t.test("embedded mode with an HTTP backend: the nonce journal survives kill -9", async (t) => {
  let forwarded = 0;
  const upstream = createServer((req, res) => {
    forwarded += 1;
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "text/plain" }).end("done"));
  });
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  t.teardown(() => new Promise<void>((resolve) => upstream.close(() => resolve())));
  const upstreamPort = (upstream.address() as AddressInfo).port;
  const gw = await embeddedGateway(
    t,
    [
      "backends:",
      "  messages: { type: stream }",
      `  orders: { type: http, url: "http://127.0.0.1:${upstreamPort}", tls: { clientCertificate: false } }`,
      "routes:",
      "  - { name: orders, path: /v1/orders/:id, backend: orders, allow: { roles: [client] } }",
      "",
    ].join("\n"),
  );

  let client = await gw.start();
  const message = client.prepare("/v1/orders/1", JSON.stringify({ order: 1 }));
  const first = await client.dispatch(message);
  t.equal(first.status, 200);
  t.equal(forwarded, 1);
  await gw.kill();
  client = await gw.start();
  const again = await client.dispatch(message);
  t.equal(again.status, 409, "refused after kill -9");
  t.equal((again.body as { code: string }).code, "replayed");
  t.equal(forwarded, 1, "the upstream saw it once");
});
