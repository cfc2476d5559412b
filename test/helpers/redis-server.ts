import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort } from "./net.js";

/** A private redis-server for tests that must stop or restart Redis (never the shared one). */
export interface OwnRedis {
  url: string;
  port: number;
  /** Stops the server (SIGTERM after appendonly fsync); the data directory stays. */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same data directory. */
  start(): Promise<void>;
  /** Stops it and removes its data directory. */
  destroy(): Promise<void>;
  /** Sends a signal to the server process (SIGSTOP freezes it, SIGCONT thaws it). */
  signal(signal: NodeJS.Signals): void;
}


/** Starts `redis-server` on a free port with appendfsync always, so a restart keeps every write. */
export async function startOwnRedis(extraArgs: string[] = []): Promise<OwnRedis> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "postern-redis-"));
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always", ...extraArgs],
      { stdio: "ignore" },
    );
    await waitForPing(port);
  };
  const stop = async () => {
    const running = child;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill("SIGTERM");
    await exited;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    stop,
    signal(signal) {
      child?.kill(signal);
    },
    async destroy() {
      child?.kill("SIGCONT");
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPing(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const probe = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on("error", () => undefined);
    try {
      await probe.connect();
      if ((await probe.ping()) === "PONG") return;
    } catch {
      // not up yet
    } finally {
      probe.disconnect();
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server on port ${port} did not answer`);
}

/** A private 3-master Redis Cluster on free ports (no replicas), for cluster tests. */
export async function startOwnCluster(): Promise<{ seeds: string; ports: number[]; nodes: OwnRedis[]; destroy(): Promise<void> }> {
  const nodes = await Promise.all(
    [0, 1, 2].map(() => startOwnRedis(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000", "--appendonly", "no"])),
  );
  // Each node keeps its cluster config in its own data dir (the --dir set by startOwnRedis).
  const ports = nodes.map((n) => n.port);
  const { execFile } = await import("node:child_process");
  await new Promise<void>((resolve, reject) =>
    execFile(
      "redis-cli",
      ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"],
      { timeout: 30_000 },
      (error, _stdout, stderr) => (error ? reject(new Error(`cluster create failed: ${stderr}`)) : resolve()),
    ),
  );
  // Wait until every node reports cluster_state:ok.
  const deadline = Date.now() + 15_000;
  for (const port of ports) {
    for (;;) {
      const probe = new Redis({ port, host: "127.0.0.1", lazyConnect: true });
      await probe.connect();
      const info = await probe.cluster("INFO");
      probe.disconnect();
      if (String(info).includes("cluster_state:ok")) break;
      if (Date.now() > deadline) throw new Error("cluster did not become ok");
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    seeds: ports.map((p) => `redis://127.0.0.1:${p}`).join(","),
    ports,
    nodes,
    async destroy() {
      await Promise.all(nodes.map((n) => n.destroy()));
    },
  };
}

/**
 * A private Redis Sentinel watching the master on `masterPort` as "mymaster" (quorum 1, master
 * declared down after 1 s), for failover tests.
 */
export async function startOwnSentinel(masterPort: number): Promise<{ port: number; destroy(): Promise<void> }> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "postern-sentinel-"));
  const conf = join(dir, "sentinel.conf");
  const { writeFile } = await import("node:fs/promises");
  await writeFile(
    conf,
    [
      `port ${port}`,
      "bind 127.0.0.1",
      `dir ${dir}`,
      `sentinel monitor mymaster 127.0.0.1 ${masterPort} 1`,
      "sentinel down-after-milliseconds mymaster 1000",
      "sentinel failover-timeout mymaster 5000",
      "",
    ].join("\n"),
  );
  const child = spawn("redis-server", [conf, "--sentinel"], { stdio: "ignore" });
  await waitForPing(port);
  return {
    port,
    async destroy() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
