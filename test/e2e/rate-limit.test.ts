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
  return { child, port: Number(/data plane \(mTLS\)\s+https:\/\/[^:]+:(\d+)/.exec(banner)![1]), done };
}

t.test("one identity above its limit through two replicas gets 429s at the combined configured rate", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "postern-ratelimit-"));
  const keyPrefix = testKeyPrefix();
  const rate = 20;
  const burst = 10;
  await writeFile(
    join(dir, "postern.yaml"),
    [
      "redis:",
      `  url: ${TEST_REDIS_URL}`,
      `  keyPrefix: "${keyPrefix}"`,
      "routes:",
      "  - name: messages",
      "    path: /v1/messages/:topic",
      "    backend: messages",
      "    allow: { roles: [client] }",
      `    rateLimit: { requestsPerSecond: ${rate}, burst: ${burst} }`,
      "",
    ].join("\n"),
  );
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
  const clients = [first.port, second.port].map((port) => new PosternClient({ url: `https://localhost:${port}`, ...material }));
  t.teardown(() => Promise.all(clients.map((c) => c.close())));

  const durationMs = 2000;
  const started = Date.now();
  let accepted = 0;
  let limited = 0;
  let retryAfterSeen = false;
  const other: string[] = [];
  await Promise.all(
    [0, 1, 2, 3].map(async (worker) => {
      const client = clients[worker % 2]!;
      while (Date.now() - started < durationMs) {
        const answer = await client.dispatch(client.prepare("/v1/messages/orders", "{}"));
        if (answer.status === 202) accepted++;
        else if (answer.status === 429) {
          limited++;
          retryAfterSeen ||= Number(answer.headers["retry-after"]) >= 1;
        } else other.push(String(answer.status));
      }
    }),
  );
  const elapsed = (Date.now() - started) / 1000;
  const expected = burst + rate * elapsed;
  t.same(other, [], "only 202s and 429s");
  t.ok(limited > 0, `429s were sent (${limited})`);
  t.ok(retryAfterSeen, "429s carry Retry-After");
  t.ok(
    accepted <= expected * 1.15 + 2 && accepted >= expected * 0.8,
    `accepted ${accepted} across both replicas, expected about ${expected.toFixed(0)} (burst ${burst} + ${rate}/s x ${elapsed.toFixed(1)} s)`,
  );
});
