import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp, type App, type ListeningAddresses } from "../../src/app.js";
import { parseConfig } from "../../src/config/load.js";
import type { PosternConfig } from "../../src/config/schema.js";
import { silentLogger } from "../../src/log.js";
import { PosternClient, type PosternClientOptions } from "../../src/client/index.js";

export const TEST_REDIS_URL = process.env.POSTERN_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export interface TestGateway {
  app: App;
  dir: string;
  addresses: ListeningAddresses;
  dataUrl: string;
  publicUrl: string;
  /** A client with one of the bootstrapped certificates ("demo-client" or "admin"). */
  client(name?: string, options?: Partial<PosternClientOptions>): Promise<PosternClient>;
  stop(): Promise<void>;
}

/** Starts a gateway on port 0 with its own freshly minted PKI in a temp dir. */
export async function startGateway(overrides: Record<string, unknown> = {}, options: { dir?: string; now?: () => number } = {}): Promise<TestGateway> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "postern-test-")));
  const config: Readonly<PosternConfig> = parseConfig({
    listeners: { data: { host: "127.0.0.1", port: 0 }, admin: { host: "127.0.0.1", port: 0 }, public: { host: "127.0.0.1", port: 0 } },
    pki: { dir: join(dir, "certs") },
    data: { dir: join(dir, "data") },
    shutdown: { drainTimeoutSeconds: 2 },
    ...overrides,
  });
  const app = await createApp(config, { log: silentLogger, ...(options.now ? { now: options.now } : {}) });
  const addresses = await app.start();
  const clients: PosternClient[] = [];
  const dataUrl = `https://localhost:${addresses.data.port}`;
  return {
    app,
    dir,
    addresses,
    dataUrl,
    publicUrl: `http://127.0.0.1:${addresses.public.port}`,
    async client(name = "demo-client", extra = {}) {
      const certs = join(dir, "certs");
      const client = new PosternClient({
        url: dataUrl,
        cert: await readFile(join(certs, `${name}.crt`)),
        key: await readFile(join(certs, `${name}.key`)),
        ca: await readFile(join(certs, "ca-bundle.pem")),
        attempts: 1,
        ...extra,
      });
      clients.push(client);
      return client;
    },
    async stop() {
      await Promise.all(clients.map((c) => c.close()));
      await app.stop();
      if (!options.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A unique Redis key prefix for one test run; tests delete only their own keys. */
export function testKeyPrefix(): string {
  return `postern-test:${process.pid}:${Math.random().toString(36).slice(2, 10)}:`;
}
