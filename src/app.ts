import type { PosternConfig } from "./config/schema.js";
import { PosternError } from "./errors.js";
import type { Backend } from "./forward/backend.js";
import { FileStreamBackend } from "./forward/file-stream.js";
import { HttpBackend } from "./forward/http-backend.js";
import { RedisStreamBackend } from "./forward/redis-stream.js";
import type { ForwardSigner } from "./forward/stream-entry.js";
import { Gateway } from "./gateway/pipeline.js";
import { RouteTable } from "./gateway/routes.js";
import { dataPlaneHandler } from "./http/data-plane.js";
import { MtlsServer, type PeerHandler } from "./http/mtls-server.js";
import { sendJson, sendProblem } from "./http/problem.js";
import { PublicServer, staticEndpoint, type PublicEndpoint } from "./http/public-server.js";
import type { Logger } from "./log.js";
import { PrometheusRecorder } from "./metrics/prometheus.js";
import type { MetricsRecorder } from "./metrics/recorder.js";
import { ensurePki, type PkiMaterial } from "./pki/bootstrap.js";
import { MemoryReplayGuard } from "./replay/memory-guard.js";
import { streamKey } from "./replay/nonce.js";
import { connectRedis, RedisReplayGuard, type RedisClient } from "./replay/redis-guard.js";
import { PublicKeyCache } from "./signing/index.js";
import { RevocationIndex } from "./tls/revocation-index.js";
import { RedisRateLimiter } from "./ratelimit/redis-limiter.js";
import { MemoryRateLimiter } from "./ratelimit/token-bucket.js";

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
  readonly metrics: PrometheusRecorder;
  readonly backends: ReadonlyMap<string, Backend>;
  start(): Promise<ListeningAddresses>;
  /** Drains in-flight requests, then closes listeners, backends and Redis. */
  stop(): Promise<void>;
}

export interface AppDeps {
  log: Logger;
  now?: () => number;
}

/** The composition root: builds every component from the frozen config and explicit deps. */
export async function createApp(config: Readonly<PosternConfig>, deps: AppDeps): Promise<App> {
  const { log } = deps;
  const now = deps.now ?? Date.now;
  const metrics = new PrometheusRecorder();
  const publicBase = config.pki.publicBaseUrl ?? `http://${displayHost(config.listeners.public.host)}:${config.listeners.public.port}`;
  const { material: pki, created: pkiCreated } = await ensurePki({
    dir: config.pki.dir,
    hostnames: config.pki.hostnames,
    now,
    crlUrl: `${publicBase}/crl`,
    ocspUrl: `${publicBase}/ocsp`,
  });
  const signer: ForwardSigner = { key: pki.signingKey, keyid: pki.signingPublicJwk.kid };

  const mode: Mode = config.redis.url ? "redis" : "embedded";
  let redis: RedisClient | undefined;
  let redisUp = false;
  if (config.redis.url) {
    metrics.redisAvailable(false);
    redis = await connectRedis(config.redis.url, {
      cluster: config.redis.cluster,
      commandTimeoutSeconds: config.redis.commandTimeoutSeconds,
      onState: (up) => {
        if (up !== redisUp) log[up ? "info" : "warn"](up ? "redis connected" : "redis unavailable");
        redisUp = up;
        metrics.redisAvailable(up);
      },
    });
  }
  const backends = await buildBackends(config, signer, redis, now, metrics, pki);

  const revocations = new RevocationIndex();
  const gateway = new Gateway({
    routes: new RouteTable(config.routes),
    backends,
    signature: config.signature,
    keys: new PublicKeyCache(),
    rateLimiter: redis ? new RedisRateLimiter(redis, config.redis.keyPrefix) : new MemoryRateLimiter(now),
    metrics,
    now,
  });

  const secureContext = () => ({ key: pki.serverKeyPem, cert: pki.serverCertChainPem, ca: pki.caBundlePem });
  const mtls = (name: string, handler: PeerHandler) =>
    new MtlsServer({
      name,
      secureContext,
      minVersion: config.tls.minVersion,
      handshakeTimeoutSeconds: config.tls.handshakeTimeoutSeconds,
      maxHeaderBytes: config.limits.maxHeaderBytes,
      requestTimeoutSeconds: config.limits.requestTimeoutSeconds,
      keepAliveTimeoutSeconds: config.limits.keepAliveTimeoutSeconds,
      revocations,
      ...(config.tls.handshakesPerSecondPerAddress > 0
        ? { handshakeLimit: { ratePerSecond: config.tls.handshakesPerSecondPerAddress, burst: config.tls.handshakeBurstPerAddress } }
        : {}),
      metrics,
      log,
      handler,
    });
  const dataServer = mtls("data", dataPlaneHandler({ gateway, metrics, log }));
  const adminServer = mtls("admin", (req, res, peer) => {
    if (!peer.identity.roles.includes("admin")) {
      sendProblem(res, new PosternError("forbidden", "the admin API requires the admin role"), log, req.url);
      return;
    }
    sendProblem(res, new PosternError("not-found", "no such admin endpoint"), log, req.url);
  });

  let listening = false;
  let stopping = false;
  const ready = () => listening && !stopping && (mode === "embedded" || redisUp);
  const endpoints: PublicEndpoint[] = [
    staticEndpoint("/metrics", metrics.contentType, () => metrics.metrics()),
    staticEndpoint("/healthz", "application/json", () => JSON.stringify({ status: "ok" })),
    {
      path: "/readyz",
      methods: ["GET", "HEAD"],
      handle: (_req, res) =>
        sendJson(res, ready() ? 200 : 503, {
          status: ready() ? "ready" : "not-ready",
          mode,
          ...(redis ? { redis: redisUp ? "up" : "down" } : {}),
        }),
    },
    staticEndpoint("/ca.pem", "application/x-pem-file", () => pki.caBundlePem),
    staticEndpoint("/.well-known/postern-keys", "application/jwk-set+json", () =>
      JSON.stringify({ keys: [{ ...pki.signingPublicJwk, use: "sig", alg: "EdDSA" }] }),
    ),
  ];
  const publicServer = new PublicServer(endpoints, log);

  return {
    mode,
    pki,
    pkiCreated,
    metrics,
    backends,
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
    async stop() {
      stopping = true;
      const drainMs = config.shutdown.drainTimeoutSeconds * 1000;
      await Promise.all([dataServer.close(drainMs), adminServer.close(drainMs)]);
      await Promise.all([...backends.values()].map((b) => b.close()));
      await publicServer.close();
      if (redis) await redis.quit().catch(() => redis?.disconnect());
    },
  };
}

async function buildBackends(
  config: Readonly<PosternConfig>,
  signer: ForwardSigner,
  redis: RedisClient | undefined,
  now: () => number,
  metrics: MetricsRecorder,
  pki: PkiMaterial,
): Promise<Map<string, Backend>> {
  const backends = new Map<string, Backend>();
  const redisGuard = redis ? new RedisReplayGuard({ redis, keyPrefix: config.redis.keyPrefix }) : undefined;
  const memoryGuard = new MemoryReplayGuard(now);
  for (const [name, backend] of Object.entries(config.backends)) {
    if (backend.type === "http") {
      backends.set(
        name,
        new HttpBackend({
          name,
          config: backend,
          guard: redisGuard ?? memoryGuard,
          signer,
          metrics,
          caBundlePem: pki.caBundlePem,
          clientCertificate: { certPem: pki.serverCertChainPem, keyPem: pki.serverKeyPem },
          now,
        }),
      );
      continue;
    }
    backends.set(
      name,
      redisGuard
        ? new RedisStreamBackend(
            name,
            { key: streamKey(config.redis.keyPrefix, name, backend.stream), maxLength: backend.maxLength },
            redisGuard,
            signer,
          )
        : await FileStreamBackend.open({ name, dataDir: config.data.dir, guard: memoryGuard, signer }),
    );
  }
  return backends;
}

function displayHost(host: string): string {
  if (host === "0.0.0.0" || host === "::") return "127.0.0.1";
  return host.includes(":") ? `[${host}]` : host;
}
