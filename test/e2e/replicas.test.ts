import type { ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import t from "tap";
import { PosternClient } from "../../src/client/index.js";
import { testKeyPrefix, TEST_REDIS_URL } from "../helpers/gateway.js";
import { finished, spawnTs, waitForOutput } from "../helpers/process.js";

async function startReplica(dir: string, env: Record<string, string>): Promise<{ child: ChildProcess; port: number; done: ReturnType<typeof finished> }> {
  const child = spawnTs("src/main.ts", [], { cwd: dir, env });
  const done = finished(child);
  const banner = await waitForOutput(child, /npx postern send .*\n/);
  const port = Number(/data plane \(mTLS\)\s+https:\/\/[^:]+:(\d+)/.exec(banner)![1]);
  return { child, port, done };
}

t.test("two gateway processes on one Redis: 1,000 copies of one message give one 202 and one entry", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "postern-replicas-"));
  const keyPrefix = testKeyPrefix();
  await writeFile(join(dir, "postern.yaml"), `redis:\n  url: ${TEST_REDIS_URL}\n  keyPrefix: "${keyPrefix}"\n`);
  const env = {
    POSTERN_CONFIG: join(dir, "postern.yaml"),
    POSTERN_PKI_DIR: join(dir, "certs"),
    POSTERN_DATA_PORT: "0",
    POSTERN_ADMIN_PORT: "0",
    POSTERN_PUBLIC_PORT: "0",
  };
  const first = await startReplica(dir, env);
  const second = await startReplica(dir, env);
  const redis = new Redis(TEST_REDIS_URL);
  t.teardown(async () => {
    first.child.kill("SIGTERM");
    second.child.kill("SIGTERM");
    await Promise.all([first.done, second.done]);
    const keys = await redis.keys(`${keyPrefix}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
    await rm(dir, { recursive: true, force: true });
  });

  const certs = join(dir, "certs");
  const material = {
    cert: await readFile(join(certs, "demo-client.crt")),
    key: await readFile(join(certs, "demo-client.key")),
    ca: await readFile(join(certs, "ca-bundle.pem")),
    attempts: 1,
  };
  const a = new PosternClient({ url: `https://localhost:${first.port}`, ...material });
  const b = new PosternClient({ url: `https://localhost:${second.port}`, ...material });
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
