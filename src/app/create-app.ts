import { basename } from "node:path";
import { reloadable, stateLocations, usesRedis, type PosternConfig } from "../config/index.js";
import type { ForwardSigner } from "../forward/index.js";
import type { Logger } from "../log.js";
import { PrometheusRecorder } from "../metrics/index.js";
import { startPki, type CertificateAuthority, type PkiMaterial } from "../pki/index.js";
import { MemoryRateLimiter, RedisRateLimiter } from "../ratelimit/index.js";
import { MemoryReplayGuard, RedisReplayGuard } from "../replay/index.js";
import { PublicKeyCache } from "../signing/index.js";
import type { StorageFileSystem } from "../storage/index.js";
import { TlsReloader, type TlsReloadOutcome } from "../tls/index.js";
import { buildListeners, type ListeningAddresses } from "./listeners.js";
import { openRedis } from "./redis.js";
import { CloseStack } from "./close-stack.js";
import { openEmbeddedStorage } from "./storage.js";
import { startClusterPrimary } from "./cluster-primary.js";
import { backendJwks } from "./sealing.js";
import { ServedPipeline } from "./served-pipeline.js";

export type Mode = "embedded" | "redis";

export interface App {
  readonly mode: Mode;
  readonly pki: PkiMaterial;
  readonly pkiCreated: boolean;
  readonly authority: CertificateAuthority;
  readonly metrics: PrometheusRecorder;
  start(): Promise<ListeningAddresses>;
  /**
   * Applies a new configuration's routes, backends and signature policy (and re-reads the
   * signing keys) without a restart. A config that cannot be applied keeps the running one and
   * rejects with the reason; sections that need a restart are reported, not applied.
   */
  reload(next: Readonly<PosternConfig>): Promise<{ restartNeeded: string[] }>;
  /**
   * Reads the server certificate, key and CA bundle again for new handshakes on the data and
   * admin listeners (SIGHUP; file changes are picked up by themselves). A candidate that fails
   * its check keeps the running material; the outcome says which.
   */
  reloadTls(): Promise<TlsReloadOutcome>;
  /** Readiness turns 503 while every listener keeps serving (the first step of `stop`). */
  beginShutdown(): void;
  /** Sends a signal to every cluster worker (SIGHUP: each runs its own reload); nothing without workers. */
  signalWorkers(signal: NodeJS.Signals): void;
  /** Process ids of the cluster workers serving now (empty without workers). */
  workerPids(): number[];
  /** Drains in-flight requests, then closes listeners, backends, storage, the PKI and Redis. */
  stop(): Promise<void>;
}

export interface AppDeps {
  log: Logger;
  now?: () => number;
  /** Embedded mode's file system; tests inject faults here. */
  fileSystem?: StorageFileSystem;
  /**
   * Cluster workers that serve the data listener (the resolved `workers`). Above 1 this
   * process is the primary: it forks them at `start`, keeps the admin and public listeners,
   * the PKI and the embedded state, and serves them to the workers.
   */
  workers?: number;
}

/** The composition root: builds every component from the frozen config and explicit deps, and only wires them. */
export async function createApp(config: Readonly<PosternConfig>, deps: AppDeps): Promise<App> {
  // `config` is the configuration at start (what only a restart changes); what a reload changes is `served.current`.
  const { log } = deps;
  const now = deps.now ?? Date.now;
  const metrics = new PrometheusRecorder();
  const mode: Mode = usesRedis(config) ? "redis" : "embedded";
  const closing = new CloseStack();
  return closing.unwindOnError(async () => {
    const redis = mode === "redis" ? closing.push(await openRedis(config, { log, metrics })) : undefined;
    const pki = closing.push(await startPki(config, { log, metrics, now, redis: redis?.client, publicBaseUrl: defaultPublicBaseUrl(config), storeName: redis ? `${redis.name} (key prefix ${config.redis.keyPrefix}{pki}:)` : `the PKI store ${stateLocations(config).storeDir}` }));
    redis?.onBack(() => void pki.trust.check().catch(() => undefined));
    const memoryGuard = new MemoryReplayGuard(now);
    const storage = mode === "embedded" ? closing.push(await openEmbeddedStorage(config, { guard: memoryGuard, metrics, log, now, fs: deps.fileSystem })) : undefined;
    // Read at each signature, so a rotation (SIGHUP or the periodic reload) applies at once.
    const signer: ForwardSigner = { get key() { return pki.signingKeys.active().key; }, get keyid() { return pki.signingKeys.active().keyid; } };
    const redisGuard = redis ? new RedisReplayGuard({ redis: redis.client, keyPrefix: config.redis.keyPrefix, waitReplicas: config.redis.waitReplicas }) : undefined;
    const rateLimiter = redis ? new RedisRateLimiter(redis.client, config.redis.keyPrefix) : new MemoryRateLimiter(now);
    const files = pki.material.files;
    const tls = new TlsReloader({
      initial: pki.serving,
      read: () => pki.readServing(),
      watchDir: config.tls.watchFiles ? config.pki.dir : undefined,
      fileNames: [files.serverCert, files.serverKey, files.caBundle].map((path) => basename(path)),
      serverCertFile: files.serverCert,
      metrics,
      log,
    });
    closing.push({ close: async () => tls.stop() });
    const backendDeps = { signer: () => signer, redisGuard, redis: redis?.client, memoryGuard, storage, metrics, tls: () => tls.current(), now };
    const served = closing.push(await ServedPipeline.open(config, { backendDeps, log }));
    const gateway = served.gateway({ keys: new PublicKeyCache(), rateLimiter, metrics, now });
    let listening = false;
    let stopping = false;
    const readiness = () => ({
      ready: listening && !stopping && !pki.trust.lost && (redis ? redis.up() : storage?.health.up === true),
      mode,
      ...(redis ? { redis: redis.up() ? ("up" as const) : ("down" as const) } : {}),
      ...(storage ? { storage: storage.health.up ? ("up" as const) : ("down" as const) } : {}),
      ...(pki.trust.lost ? { pki: "state-lost" as const, code: "pki-state-lost" } : {}),
    });
    const workerCount = deps.workers ?? 1;
    const cluster = workerCount > 1 ? startClusterPrimary({ count: workerCount, log, metrics, pki, backends: () => served.current.backends, storage, rateLimiter, tls }) : undefined;
    if (cluster) closing.push({ close: async () => cluster.stop() });
    const workersReady = () => !cluster || cluster.pool.live > 0;
    const listeners = buildListeners({ config: () => served.current.config, gateway, pki, rateLimiter, metrics, log, now, readiness: () => {
      const state = readiness();
      return cluster ? { ...state, ready: state.ready && workersReady(), workers: { live: cluster.pool.live, configured: workerCount } } : state;
    }, dataPlane: !cluster, tls, backendJwks: (name) => backendJwks(served.current.sealing, name, now()) });
    // After the listeners' own: only what they serve goes on record.
    tls.onApplied((material) => {
      void served.refreshTlsClients();
      void pki.adoptServing(material).then(
        (adopted) => adopted && log.info("the reloaded server certificate is on record now", { serial: material.serial }),
        (error: unknown) => log.warn("the reloaded server certificate could not be put on record (OCSP answers unknown for it until a restart)", { serial: material.serial, error: String(error) }),
      );
    });
    return {
      mode, pki: pki.material, pkiCreated: pki.created, authority: pki.authority, metrics,
      async start() {
        const addresses = await listeners.start();
        tls.start();
        let data = addresses.data;
        if (cluster) {
          await cluster.pool.start();
          data = { host: config.listeners.data.host, port: cluster.pool.dataPort ?? config.listeners.data.port };
        }
        listening = true;
        return { ...addresses, data: data! };
      },
      async reload(next) {
        await pki.signingKeys.reload();
        const { config: applied, restartNeeded } = reloadable(served.current.config, next);
        await served.apply(applied);
        return { restartNeeded };
      },
      reloadTls: () => tls.reload("signal"),
      beginShutdown: () => void (stopping = true),
      signalWorkers: (signal) => cluster?.pool.signal(signal),
      workerPids: () => cluster?.pool.pids ?? [],
      async stop() {
        stopping = true;
        // Workers first: while they drain, their messages still reach this process's state.
        await cluster?.pool.drain(served.current.config.shutdown.drainTimeoutSeconds * 1000);
        await listeners.close(served.current.config.shutdown.drainTimeoutSeconds * 1000);
        await closing.closeAll();
      },
    };
  });
}

/** Where clients reach the public listener, for certificate URLs when `pki.publicBaseUrl` is not set. */
function defaultPublicBaseUrl(config: Readonly<PosternConfig>): string {
  const { host, port } = config.listeners.public;
  const shown = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  return config.pki.publicBaseUrl ?? `http://${shown}:${port}`;
}
