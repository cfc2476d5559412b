/**
 * Starts what the gateway bench measures, each in its own process on the servers' core: Postern
 * embedded first (its first start bootstraps the PKI every server then shares), the bare Node
 * server and nginx with Postern's server certificate, and Postern in Redis mode under a key
 * prefix of this run's own. Every start registers its stop in `cleanups`.
 */
import { createPrivateKey, randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AdminClient } from "../../src/client/index.js";
import { newKeyWithCsr } from "../../src/cli/csr.js";
import { resolvePassphrase } from "../../src/pki/ca/ca-files.js";
import { decryptPrivateKeyPem, plainPrivateKeyPem } from "../../src/pki/keys/keys.js";
import { algorithmForKey } from "../../src/signing/index.js";
import type { GatewayBenchOptions, TargetName } from "../options.js";
import type { Pinning } from "./processes.js";
import type { ClientMaterial, TargetAddress } from "./protocol.js";
import { RedisProbe } from "./redis-probe.js";
import { benchConfig, installNginx, nginxVersion, startBare, startNginx, startPostern, type ServerProcess, type ServerTlsFiles } from "./servers.js";

/** The route Postern's default configuration serves (`/v1/messages/:topic`, role client). */
export const MESSAGE_PATH = "/v1/messages/bench";

export interface Target {
  name: TargetName;
  label: string;
  /** The running process; replaced by `restart`. */
  server: ServerProcess;
  address: TargetAddress;
  /**
   * Starts the server again the same way (same PKI, config and directories) and points `server`
   * and `address` at it; a Node server gets `nodeFlags` (V8's) this time, nginx ignores them.
   */
  restart(nodeFlags?: readonly string[]): Promise<void>;
  /** Set for Redis mode: the Redis whose CPU and bytes the messages cost. */
  redis?: RedisProbe;
}

export interface Setup {
  targets: Target[];
  client: ClientMaterial;
  /** e.g. "P-256 client key, ecdsa-p256-sha256 signatures". */
  clientLabel: string;
  /** Lines for the report: versions, what was skipped and why. */
  notes: string[];
}

/** A target whose process `start` makes; its stop (of whichever process is current) goes into `cleanups`. */
async function startTarget(
  name: TargetName,
  label: string,
  start: (nodeFlags?: readonly string[]) => Promise<ServerProcess>,
  cleanups: Array<() => Promise<unknown>>,
  redis?: RedisProbe,
): Promise<Target> {
  const server = await start();
  const target: Target = {
    name,
    label,
    server,
    address: { name, host: server.host, port: server.port, path: MESSAGE_PATH },
    async restart(nodeFlags) {
      await target.server.stop();
      target.server = await start(nodeFlags);
      target.address = { ...target.address, host: target.server.host, port: target.server.port };
    },
    ...(redis ? { redis } : {}),
  };
  cleanups.push(() => target.server.stop());
  return target;
}

/** The server key in the clear (0600, in the bench's temp dir) for the bare server and nginx. */
async function serverTlsFiles(dir: string, pkiDir: string): Promise<ServerTlsFiles> {
  const { passphrase } = await resolvePassphrase({ dir: pkiDir, env: {} }, false);
  const key = decryptPrivateKeyPem(await readFile(join(pkiDir, "server.key"), "utf8"), passphrase, "server.key");
  const keyPath = join(dir, "server-plain.key");
  await writeFile(keyPath, plainPrivateKeyPem(key), { mode: 0o600 });
  return { keyPath, chainPath: join(pkiDir, "server.crt"), caPath: join(pkiDir, "ca-bundle.pem") };
}

/** The bootstrapped demo client (P-256), or a client of `algorithm` certified through the admin API. */
async function clientMaterial(pkiDir: string, algorithm: GatewayBenchOptions["algorithm"], adminPort: number): Promise<ClientMaterial> {
  const caPem = await readFile(join(pkiDir, "ca-bundle.pem"), "utf8");
  if (algorithm === "P-256") {
    return { certPem: await readFile(join(pkiDir, "demo-client.crt"), "utf8"), keyPem: await readFile(join(pkiDir, "demo-client.key"), "utf8"), caPem };
  }
  const { keyPem, csrPem } = await newKeyWithCsr(algorithm, `spiffe://postern.local/client/bench-${algorithm.toLowerCase()}`);
  const admin = new AdminClient({
    url: `https://127.0.0.1:${adminPort}`,
    cert: await readFile(join(pkiDir, "admin.crt")),
    key: await readFile(join(pkiDir, "admin.key")),
    ca: caPem,
  });
  try {
    const issued = (await admin.call("POST", "/v1/certificates", { csr: csrPem })) as { certificate: string };
    return { certPem: issued.certificate, keyPem, caPem };
  } finally {
    await admin.close();
  }
}

export async function startTargets(
  options: GatewayBenchOptions,
  context: { dir: string; main: string; pinning: Pinning; cleanups: Array<() => Promise<unknown>>; say: (line: string) => void },
): Promise<Setup> {
  const { dir, main, pinning, cleanups, say } = context;
  const cpu = pinning.serverCpu;
  const wanted = new Set(options.targets);
  const notes: string[] = [];
  const targets: Target[] = [];
  const pkiDir = join(dir, "certs");

  say("starting Postern (embedded mode; its first start makes the PKI every server shares) ...");
  await mkdir(join(dir, "embedded"));
  let adminPort = 0;
  const embedded = await startTarget("embedded", "Postern embedded", async (nodeFlags) => {
    const started = await startPostern({ main, dir: join(dir, "embedded"), pkiDir, config: benchConfig(), cpu, cpuProfDir: options.cpuProfDir, nodeFlags });
    adminPort = started.adminPort;
    return started;
  }, cleanups);
  const tls = await serverTlsFiles(dir, pkiDir);
  const client = await clientMaterial(pkiDir, options.algorithm, adminPort);
  const signatureAlgorithm = algorithmForKey(createPrivateKey(client.keyPem)) ?? "?";

  if (wanted.has("bare")) {
    await mkdir(join(dir, "bare"));
    targets.push(await startTarget("bare", "bare Node mTLS 202", (nodeFlags) => startBare({ dir: join(dir, "bare"), tls, cpu, nodeFlags }), cleanups));
  }
  if (wanted.has("nginx")) {
    const had = nginxVersion();
    const installed = had === undefined ? installNginx(say) : { version: had };
    if ("missing" in installed) {
      notes.push(`nginx: ${installed.missing}: skipped`);
    } else {
      if (had === undefined) notes.push(`nginx: installed from Debian's packages by this run (the system service is never started by the bench)`);
      await mkdir(join(dir, "nginx"));
      targets.push(await startTarget("nginx", `nginx ${installed.version} mTLS return 202`, () => startNginx({ dir: join(dir, "nginx"), tls, cpu }), cleanups));
    }
  }
  if (wanted.has("embedded")) targets.push(embedded);
  else await embedded.server.stop();
  if (wanted.has("workers2")) {
    // Two workers on one core would only measure the cluster channel's cost: this target may
    // use every core (the generator's too), so its msg/s is what a second core buys here.
    say("starting Postern (embedded mode, workers: 2, not pinned) ...");
    await mkdir(join(dir, "workers2"));
    // The embedded target holds the PKI store's lock: this one keeps a store and ledger of its own.
    const own = join(dir, "workers2");
    const config = { ...benchConfig(), workers: 2, pki: { storeDir: join(own, "pki-store"), stateDir: join(own, "pki-state") } };
    targets.push(await startTarget("workers2", "Postern embedded, 2 workers", (nodeFlags) => startPostern({ main, dir: own, pkiDir, config, cpu: undefined, cpuProfDir: options.cpuProfDir, nodeFlags }), cleanups));
    notes.push("Postern embedded, 2 workers: not pinned (primary and both workers may run on every core, the load generator's included); CPU counts the whole process tree");
  }
  if (wanted.has("redis")) {
    const probe = await RedisProbe.connect(options.redisUrl);
    if (typeof probe === "string") {
      notes.push(`Redis mode: skipped: ${probe}`);
    } else {
      const keyPrefix = `postern-bench:${process.pid}-${randomBytes(4).toString("hex")}:`;
      cleanups.push(async () => {
        const deleted = await probe.deleteKeys(keyPrefix);
        say(`deleted ${deleted} Redis keys under ${keyPrefix}`);
        await probe.close();
      });
      say(`starting Postern (Redis mode, ${options.redisUrl}, key prefix ${keyPrefix}) ...`);
      await mkdir(join(dir, "redis"));
      // Its own trust ledger: the shared PKI directory's ledger records the embedded store's
      // certificates, which a Redis store that starts empty would read as lost state.
      const config = { ...benchConfig({ url: options.redisUrl, keyPrefix }), pki: { stateDir: join(dir, "redis", "pki-state") } };
      targets.push(await startTarget("redis", "Postern Redis mode", (nodeFlags) => startPostern({ main, dir: join(dir, "redis"), pkiDir, config, cpu, cpuProfDir: options.cpuProfDir, nodeFlags }), cleanups, probe));
      notes.push(
        `Redis ${probe.version} at ${options.redisUrl}` +
          (probe.pid ? `, redis-server pid ${probe.pid} (shared: other clients' traffic during a run counts too)` : " (not on this machine: no redis-server CPU)") +
          `; keys under ${keyPrefix}, deleted at the end`,
      );
    }
  }
  return { targets, client, clientLabel: `${options.algorithm} client key, ${signatureAlgorithm} signatures`, notes };
}
