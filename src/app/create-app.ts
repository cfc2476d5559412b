import { adminHandler, explainEndpoint, pkiEndpoints } from "../admin/index.js";
import { buildBackends, type BackendDeps } from "./backends.js";
import { startPki, type PkiRuntime } from "./pki.js";
import { openEmbeddedStorage, type EmbeddedStorage } from "./storage.js";
import { ConfigError, usesRedis, type PosternConfig } from "../config/index.js";
import type { Backend, ForwardSigner } from "../forward/index.js";
import { Gateway, RouteTable } from "../gateway/index.js";
import { dataPlaneHandler, MtlsServer, type OptionalPeerHandler, refuseWhile, publicEndpoints, PublicServer } from "../http/index.js";
import { PosternError } from "../errors.js";
import { reachRedis, connectRedis, describeRedis, type RedisClient, RedisHealth } from "../redis/index.js";
import type { Logger } from "../log.js";
import { PrometheusRecorder } from "../metrics/index.js";
import type { PkiMaterial, CertificateAuthority } from "../pki/index.js";
import { RedisRateLimiter, MemoryRateLimiter } from "../ratelimit/index.js";
import { MemoryReplayGuard, RedisReplayGuard } from "../replay/index.js";
import { PublicKeyCache } from "../signing/index.js";
import type { StorageFileSystem } from "../storage/index.js";
import { caChainVerifier, trustedSources } from "../tls/index.js";

export type Mode = "embedded" | "redis";

export interface ListeningAddresses {
  data: { host: string; port: number };
  admin: { host: string; port: number };
  public: { host: string; port: number };
}

export interface App {
  readonly mode: Mode;
  readonly pki: PkiMaterial;
  readonly pkiCreated: boolean;
  readonly authority: CertificateAuthority;
  readonly metrics: PrometheusRecorder;
  start(): Promise<ListeningAddresses>;
  /**
   * Applies a new configuration's routes, backends and signature policy without a restart.
   * A config that cannot be applied keeps the running one and rejects with the reason.
   * Keys that need a restart (listeners, TLS, PKI, Redis, data, limits) are reported, not applied.
   */
  reload(next: Readonly<PosternConfig>): Promise<{ restartNeeded: string[] }>;
  /**
   * Turns readiness to 503 while every listener keeps serving, so load balancers stop sending
   * new work before anything closes (the first step of `stop`, callable ahead of it).
   */
  beginShutdown(): void;
  /** Drains in-flight requests, then closes listeners, backends, the PKI and Redis. */
  stop(): Promise<void>;
}

export interface AppDeps {
  log: Logger;
  now?: () => number;
  /** Embedded mode's file system; tests inject faults here. */
  fileSystem?: StorageFileSystem;
}

/** Sections a reload cannot change in a running process. */
const RESTART_SECTIONS = ["listeners", "tls", "pki", "redis", "data", "limits", "shutdown", "log"] as const;

/** The composition root: builds every component from the frozen config and explicit deps. */
export async function createApp(initial: Readonly<PosternConfig>, deps: AppDeps): Promise<App> {
  let config = initial;
  const { log } = deps;
  const now = deps.now ?? Date.now;
  const metrics = new PrometheusRecorder();
  const onStop: Array<() => void> = [];
  const publicBaseUrl = config.pki.publicBaseUrl ?? `http://${displayHost(config.listeners.public.host)}:${config.listeners.public.port}`;

  const mode: Mode = usesRedis(config) ? "redis" : "embedded";
  let redis: RedisClient | undefined;
  let health: RedisHealth | undefined;
  const redisUp = () => health?.up === true;
  // Set once the PKI runs: a Redis that comes back is checked for lost state.
  let checkTrust: (() => Promise<unknown>) | undefined;
  if (mode === "redis") {
    metrics.redisAvailable(false);
    let stopped = false;
    redis = await connectRedis(config.redis, { onState: (up) => health?.connectionChanged(up) });
    // Every backend's nonces (and streams) live in its own hash slot: each must answer.
    health = new RedisHealth(
      redis,
      () => Object.keys(config.backends).map((backend) => `${config.redis.keyPrefix}{${backend}}:health`),
      (up) => {
        if (!stopped) log[up ? "info" : "warn"](up ? "redis connected" : "redis unavailable", { redis: describeRedis(config.redis) });
        // Back after an outage: the data may not be (a restarted Redis that keeps nothing).
        if (up) void checkTrust?.().catch(() => undefined);
        metrics.redisAvailable(up);
      },
    );
    health.start();
    onStop.push(() => {
      stopped = true;
      health?.stop();
    });
    await health.probe();
  }

  // What is opened so far is closed again when a later step fails, or the process would hang.
  const closeRedis = async () => {
    for (const stop of onStop) stop();
    await redis?.quit().catch(() => redis?.disconnect());
  };
  let pki: PkiRuntime;
  try {
    if (redis) await reachRedis(redis, describeRedis(config.redis));
    pki = await startPki(config, {
      log,
      metrics,
      now,
      redis,
      publicBaseUrl,
      storeName: redis ? `${describeRedis(config.redis)} (key prefix ${config.redis.keyPrefix}{pki}:)` : `the PKI store ${config.pki.storeDir ?? `${config.pki.dir}/store`}`,
    });
  } catch (error) {
    await closeRedis();
    throw error;
  }
  checkTrust = () => pki.trust.check();
  // Read at each signature, so a rotation (SIGHUP or the periodic reload) applies at once.
  const liveSigner: ForwardSigner = {
    get key() {
      return pki.signingKeys.active().key;
    },
    get keyid() {
      return pki.signingKeys.active().keyid;
    },
  };
  const signer = (): ForwardSigner => liveSigner;
  const memoryGuard = new MemoryReplayGuard(now);
  let storage: EmbeddedStorage | undefined;
  let backendDeps: BackendDeps;
  let backends: Map<string, Backend>;
  try {
    // Embedded mode reads its stored nonce claims back before any backend takes a message.
    storage = mode === "embedded" ? await openEmbeddedStorage(config, { guard: memoryGuard, metrics, log, now, fs: deps.fileSystem }) : undefined;
    backendDeps = {
      signer,
      redisGuard: redis ? new RedisReplayGuard({ redis, keyPrefix: config.redis.keyPrefix, waitReplicas: config.redis.waitReplicas }) : undefined,
      memoryGuard,
      storage,
      metrics,
      pki: pki.material,
      now,
    };
    backends = await buildBackends(config, backendDeps);
  } catch (error) {
    await storage?.close().catch(() => undefined);
    await pki.stop().catch(() => undefined);
    await closeRedis();
    throw error;
  }
  const rateLimiter = redis ? new RedisRateLimiter(redis, config.redis.keyPrefix) : new MemoryRateLimiter(now);
  const gateway = new Gateway({
    routes: new RouteTable(config.routes),
    backends,
    signature: config.signature,
    keys: new PublicKeyCache(),
    rateLimiter,
    metrics,
    now,
  });

  const material = pki.material;
  const chainsToCa = caChainVerifier(material.caBundlePem);
  const mtls = (
    name: string,
    handler: OptionalPeerHandler,
    anonymous: boolean,
    extras: { http2?: { maxConcurrentStreams: number }; proxyProtocol?: { isTrusted(address: string): boolean } } = {},
  ) =>
    new MtlsServer({
      name,
      secureContext: () => ({ key: material.serverKeyPem, cert: material.serverCertChainPem, ca: material.caBundlePem }),
      minVersion: config.tls.minVersion,
      handshakeTimeoutSeconds: config.tls.handshakeTimeoutSeconds,
      maxHeaderBytes: config.limits.maxHeaderBytes,
      maxHeaderCount: config.limits.maxHeaderCount,
      headersTimeoutSeconds: config.limits.headersTimeoutSeconds,
      requestTimeoutSeconds: config.limits.requestTimeoutSeconds,
      keepAliveTimeoutSeconds: config.limits.keepAliveTimeoutSeconds,
      connections: config.limits,
      revocations: pki.revocations,
      chainsToCa,
      ...(config.tls.handshakesPerSecondPerAddress > 0
        ? { handshakeLimit: { ratePerSecond: config.tls.handshakesPerSecondPerAddress, burst: config.tls.handshakeBurstPerAddress } }
        : {}),
      anonymous,
      ...(anonymous ? { expiredGraceSeconds: config.pki.renewalGraceSeconds } : {}),
      metrics,
      log,
      now,
      accessLog: config.log.access,
      ...extras,
      handler,
    });
  // While the PKI store has lost state its trust ledger recorded, it cannot say who is revoked:
  // the data plane answers 503 pki-state-lost until an operator restores it.
  const stateLost = new PosternError("pki-state-lost", "the gateway's PKI state was lost; an operator must restore it", { extensions: { retryAfterSeconds: 30 } });
  const dataHandler = refuseWhile(dataPlaneHandler({ gateway, metrics, log }), () => (pki.trust.lost ? stateLost : undefined), { metrics, log });
  const dataListener = config.listeners.data;
  const dataServer = mtls("data", dataHandler as OptionalPeerHandler, false, {
    ...(dataListener.http2 ? { http2: dataListener } : {}),
    ...(dataListener.proxyProtocol ? { proxyProtocol: { isTrusted: trustedSources(dataListener.proxyProtocol.trustedSources) } } : {}),
  });
  const explainDeps = {
    routes: () => gateway.routeTable,
    caBundlePem: material.caBundlePem,
    isRevoked: async (serial: string) => {
      const record = await pki.store.getCertificate(serial);
      return record?.status === "revoked"
        ? { revoked: true, ...(record.revocationReason ? { reason: record.revocationReason } : {}), ...(record.revokedAtMs ? { atMs: record.revokedAtMs } : {}) }
        : { revoked: pki.revocations.has(serial) };
    },
    rateLimiter,
    now,
  };
  const adminServer = mtls("admin", adminHandler([...pkiEndpoints(pki.authority), explainEndpoint(explainDeps)], log), true);

  // A revocation closes the live connections of that certificate at once, on every replica.
  pki.onRevoked((entry) => {
    const closed = dataServer.closeConnectionsOf(entry.serial) + adminServer.closeConnectionsOf(entry.serial);
    metrics.revocationPropagated((now() - entry.revokedAtMs) / 1000);
    if (closed > 0) log.info("closed the live connections of a revoked certificate", { serial: entry.serial, closed });
  });

  let listening = false;
  let stopping = false;
  const ready = () => listening && !stopping && !pki.trust.lost && (mode === "embedded" ? storage?.health.up === true : redisUp());
  const endpoints = publicEndpoints({
    metrics,
    readiness: () => ({
      ready: ready(),
      mode,
      ...(redis ? { redis: redisUp() ? ("up" as const) : ("down" as const) } : {}),
      ...(storage ? { storage: storage.health.up ? ("up" as const) : ("down" as const) } : {}),
      ...(pki.trust.lost ? { pki: "state-lost" as const, code: "pki-state-lost" } : {}),
    }),
    caBundlePem: material.caBundlePem,
    jwks: () => pki.signingKeys.jwks(),
    crl: pki.crl,
    authority: pki.authority,
  });
  const publicServer = new PublicServer(endpoints, log);

  return {
    mode,
    pki: material,
    pkiCreated: pki.created,
    authority: pki.authority,
    metrics,
    async start() {
      const l = config.listeners;
      const [data, admin, pub] = await Promise.all([
        dataServer.listen(l.data.host, l.data.port),
        adminServer.listen(l.admin.host, l.admin.port),
        publicServer.listen(l.public.host, l.public.port),
      ]);
      listening = true;
      return {
        data: { host: l.data.host, port: data.port },
        admin: { host: l.admin.host, port: admin.port },
        public: { host: l.public.host, port: pub.port },
      };
    },
    async reload(next) {
      await pki.signingKeys.reload();
      const restartNeeded = RESTART_SECTIONS.filter((key) => JSON.stringify(next[key]) !== JSON.stringify(config[key]));
      let fresh: Map<string, Backend>;
      try {
        fresh = await buildBackends(next, backendDeps);
      } catch (error) {
        throw error instanceof ConfigError ? error : new ConfigError(`backends: ${(error as Error).message}`);
      }
      const previous = backends;
      backends = fresh;
      gateway.configure({ routes: new RouteTable(next.routes), backends: fresh, signature: next.signature });
      config = { ...next, ...Object.fromEntries(restartNeeded.map((key) => [key, config[key]])) } as Readonly<PosternConfig>;
      // In-flight requests may still hold an old backend: close them once those have had time to finish.
      setTimeout(() => void Promise.all([...previous.values()].map((b) => b.close())), config.shutdown.drainTimeoutSeconds * 1000).unref();
      return { restartNeeded };
    },
    beginShutdown() {
      stopping = true;
    },
    async stop() {
      stopping = true;
      const drainMs = config.shutdown.drainTimeoutSeconds * 1000;
      await Promise.all([dataServer.close(drainMs), adminServer.close(drainMs)]);
      await Promise.all([...backends.values()].map((b) => b.close()));
      await storage?.close();
      await publicServer.close();
      await pki.stop();
      await closeRedis();
    },
  };
}

function displayHost(host: string): string {
  if (host === "0.0.0.0" || host === "::") return "127.0.0.1";
  return host.includes(":") ? `[${host}]` : host;
}
