import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp, type App, type ListeningAddresses } from "../../src/app/index.js";
import { parseConfig } from "../../src/config/load.js";
import type { PosternConfig } from "../../src/config/schema.js";
import { silentLogger, type Logger } from "../../src/log.js";
import { AdminClient, PosternClient, type PosternClientOptions } from "../../src/client/index.js";
import type { StorageFileSystem } from "../../src/storage/index.js";

export { TEST_REDIS_URL } from "./redis.js";

export interface TestGateway {
  app: App;
  dir: string;
  addresses: ListeningAddresses;
  dataUrl: string;
  publicUrl: string;
  adminUrl: string;
  /** The bootstrapped PKI directory (certs, keys, ca-bundle.pem). */
  certs: string;
  caBundle: string;
  /** A scratch directory inside the gateway's temp dir, removed with it at stop. */
  workDir(): Promise<string>;
  /** CLI flags that point an admin command at this gateway with the bootstrapped admin certificate. */
  adminFlags: string[];
  /** An admin API client with one of the bootstrapped certificates (default "admin"); closed at stop. */
  adminClient(name?: string): Promise<AdminClient>;
  /** A client with one of the bootstrapped certificates ("demo-client" or "admin"). */
  client(name?: string, options?: Partial<PosternClientOptions>): Promise<PosternClient>;
  stop(): Promise<void>;
}

/** Starts a gateway on port 0 with its own freshly minted PKI in a temp dir. */
export async function startGateway(
  overrides: Record<string, unknown> = {},
  options: { dir?: string; now?: () => number; fileSystem?: StorageFileSystem; log?: Logger } = {},
): Promise<TestGateway> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "postern-test-")));
  const config: Readonly<PosternConfig> = parseConfig({
    listeners: { data: { host: "127.0.0.1", port: 0 }, admin: { host: "127.0.0.1", port: 0 }, public: { host: "127.0.0.1", port: 0 } },
    shutdown: { drainTimeoutSeconds: 2 },
    ...overrides,
    // Sections that hold the temp dirs are merged, so an override cannot point them elsewhere.
    pki: { dir: join(dir, "certs"), ...(overrides.pki as object | undefined) },
    data: { dir: join(dir, "data"), ...(overrides.data as object | undefined) },
  });
  const app = await createApp(config, {
    log: options.log ?? silentLogger,
    ...(options.now ? { now: options.now } : {}),
    ...(options.fileSystem ? { fileSystem: options.fileSystem } : {}),
  });
  const addresses = await app.start();
  const clients: Array<PosternClient | AdminClient> = [];
  const dataUrl = `https://localhost:${addresses.data.port}`;
  const adminUrl = `https://127.0.0.1:${addresses.admin.port}`;
  const certs = join(dir, "certs");
  return {
    app,
    dir,
    addresses,
    dataUrl,
    publicUrl: `http://127.0.0.1:${addresses.public.port}`,
    adminUrl,
    certs,
    caBundle: join(certs, "ca-bundle.pem"),
    workDir: () => mkdtemp(join(dir, "work-")),
    adminFlags: ["--admin-url", adminUrl, "--cert", join(certs, "admin.crt"), "--key", join(certs, "admin.key"), "--ca", join(certs, "ca-bundle.pem")],
    async adminClient(name = "admin") {
      const client = new AdminClient({
        url: adminUrl,
        cert: await readFile(join(certs, `${name}.crt`)),
        key: await readFile(join(certs, `${name}.key`)),
        ca: await readFile(join(certs, "ca-bundle.pem")),
      });
      clients.push(client);
      return client;
    },
    async client(name = "demo-client", extra = {}) {
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
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
      await app.stop();
      if (!options.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}
