import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { PosternClient } from "../../src/client/index.js";
import { freePort } from "../helpers/net.js";
import { runTool } from "../helpers/process.js";
import { TEST_REDIS_URL, useTestRedis } from "../helpers/redis.js";
import { startReplica, stopReplicas, type Replica } from "../helpers/replica.js";

// The file's time, as long as its tests may take together (.taprc's 120 s would cut them short).
t.setTimeout(240_000);

t.test("two replicas behind HAProxy: restarting one under load loses no request", { timeout: 240_000 }, async (t) => {
  if ((await runTool("haproxy", ["-v"])).code !== 0) {
    t.comment("SKIPPED: haproxy is not installed (Debian package haproxy; .ci/run installs it)");
    t.pass("skipped: no haproxy", { skip: "haproxy is not installed" });
    return;
  }
  const { redis, keyPrefix } = await useTestRedis(t);
  const dir = await mkdtemp(join(tmpdir(), "postern-hitless-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, "postern.yaml"), `redis:\n  url: ${TEST_REDIS_URL}\n  keyPrefix: "${keyPrefix}"\n`);
  const ports = await Promise.all(Array.from({ length: 6 }, () => freePort()));
  const envFor = (i: number) => ({
    POSTERN_CONFIG: join(dir, "postern.yaml"),
    POSTERN_PKI_DIR: join(dir, "certs"),
    POSTERN_PUBLIC_BASE_URL: "http://127.0.0.1:9464",
    POSTERN_DATA_PORT: String(ports[i * 3]),
    POSTERN_ADMIN_PORT: String(ports[i * 3 + 1]),
    POSTERN_PUBLIC_PORT: String(ports[i * 3 + 2]),
    POSTERN_HANDSHAKES_PER_SECOND_PER_ADDRESS: "0",
    POSTERN_SHUTDOWN_READINESS_DELAY_SECONDS: "3",
  });
  const replicas: Replica[] = [await startReplica(dir, envFor(0))];
  replicas.push(await startReplica(dir, envFor(1)));
  t.teardown(() => stopReplicas(...replicas));

  // The deploy files' HAProxy settings, on these ports, with a faster check: /readyz every
  // 500 ms, two failures to take a server out (the readiness delay of 3 s covers it).
  const front = await freePort();
  await writeFile(
    join(dir, "haproxy.cfg"),
    [
      "defaults",
      "  mode tcp",
      "  timeout connect 5s",
      "  timeout client 75s",
      "  timeout server 75s",
      "frontend data",
      `  bind 127.0.0.1:${front}`,
      "  default_backend postern_data",
      "backend postern_data",
      "  balance leastconn",
      "  option httpchk",
      "  http-check send meth GET uri /readyz",
      "  http-check expect status 200",
      `  server postern-1 127.0.0.1:${ports[0]} check port ${ports[2]} inter 500ms fall 2 rise 2`,
      `  server postern-2 127.0.0.1:${ports[3]} check port ${ports[5]} inter 500ms fall 2 rise 2`,
      "",
    ].join("\n"),
  );
  const haproxy = spawn("haproxy", ["-db", "-f", join(dir, "haproxy.cfg")], { stdio: "ignore" });
  t.teardown(() => void haproxy.kill("SIGTERM"));
  await new Promise((resolve) => setTimeout(resolve, 1500));

  // The client library as shipped: a request that meets a connection the server is closing (a
  // keep-alive race no server can avoid) is sent again, same bytes, so it is accepted once.
  const certs = join(dir, "certs");
  const client = new PosternClient({
    url: `https://localhost:${front}`,
    cert: await readFile(join(certs, "demo-client.crt")),
    key: await readFile(join(certs, "demo-client.key")),
    ca: await readFile(join(certs, "ca-bundle.pem")),
  });
  t.teardown(() => client.close());
  const accepted: string[] = [];
  const failures: string[] = [];
  let sending = true;
  const workers = Array.from({ length: 4 }, async (_, w) => {
    for (let i = 0; sending; i++) {
      try {
        const result = await client.send(`/v1/messages/hitless-${w}`, JSON.stringify({ w, i }));
        if (result.status === 202) accepted.push(result.id);
        else failures.push(`status ${result.status}`);
      } catch (error) {
        failures.push(String((error as Error).message));
      }
    }
  });
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const before = accepted.length;
  const old = replicas.shift()!;
  old.child.kill("SIGTERM");
  const exit = await old.done;
  t.equal(exit.code, 0, "the replica drained and exited 0");
  replicas.unshift(await startReplica(dir, envFor(0)));
  await new Promise((resolve) => setTimeout(resolve, 3000));
  sending = false;
  await Promise.all(workers);

  t.ok(accepted.length > before + 10, `${accepted.length} messages accepted, ${accepted.length - before} during the restart`);
  t.same(failures, [], "no request was lost");
  const stored = await redis.xlen(`${keyPrefix}{messages}:messages`);
  t.equal(stored, accepted.length, "each accepted message is in the stream once");
  t.equal(new Set(accepted).size, accepted.length);
});
