import type { ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PosternClient } from "../../src/client/index.js";
import { bannerPorts, finished, spawnTs, waitForOutput } from "./process.js";
import { TEST_REDIS_URL, useTestRedis } from "./redis.js";

export interface Replica {
  child: ChildProcess;
  /** The data plane's port, read from the banner. */
  port: number;
  done: ReturnType<typeof finished>;
}

/** Starts `postern start` as its own process in `dir` and waits for its banner. */
export async function startReplica(dir: string, env: Record<string, string>): Promise<Replica> {
  const child = spawnTs("src/main.ts", [], { cwd: dir, env });
  const done = finished(child);
  const banner = await waitForOutput(child, /npx postern send .*\n/);
  return { child, port: bannerPorts(banner).dataPort, done };
}

/** Stops replicas with SIGTERM and waits for them to exit. */
export async function stopReplicas(...replicas: Replica[]): Promise<void> {
  for (const replica of replicas) replica.child.kill("SIGTERM");
  await Promise.all(replicas.map((replica) => replica.done));
}

/** A client with the bootstrapped demo certificate of a PKI directory, for the replica on `port`. */
export async function demoClient(certs: string, port: number): Promise<PosternClient> {
  return new PosternClient({
    url: `https://localhost:${port}`,
    cert: await readFile(join(certs, "demo-client.crt")),
    key: await readFile(join(certs, "demo-client.key")),
    ca: await readFile(join(certs, "ca-bundle.pem")),
    attempts: 1,
  });
}

/**
 * Two `postern start` processes on the test Redis, sharing one PKI directory (the first
 * bootstraps it), with `extraYaml` appended to their config file. Stopped at teardown.
 */
export async function startReplicaPair(t: { teardown(fn: () => Promise<void>): void }, extraYaml = "") {
  const { redis, keyPrefix } = await useTestRedis(t);
  const dir = await mkdtemp(join(tmpdir(), "postern-replicas-"));
  await writeFile(join(dir, "postern.yaml"), `redis:\n  url: ${TEST_REDIS_URL}\n  keyPrefix: "${keyPrefix}"\n${extraYaml}`);
  const env = {
    POSTERN_CONFIG: join(dir, "postern.yaml"),
    POSTERN_PKI_DIR: join(dir, "certs"),
    POSTERN_DATA_PORT: "0",
    POSTERN_ADMIN_PORT: "0",
    POSTERN_PUBLIC_PORT: "0",
  };
  const first = await startReplica(dir, env);
  const second = await startReplica(dir, env).catch(async (error: unknown) => {
    await stopReplicas(first);
    throw error;
  });
  t.teardown(async () => {
    await stopReplicas(first, second);
    await rm(dir, { recursive: true, force: true });
  });
  return { redis, keyPrefix, certs: join(dir, "certs"), first, second };
}
