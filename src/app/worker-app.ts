import { reloadable, usesRedis, type PosternConfig } from "../config/index.js";
import type { ForwardSigner } from "../forward/index.js";
import type { Logger } from "../log.js";
import { PrometheusRecorder } from "../metrics/index.js";
import { openSigningKeys, RevocationIndex } from "../pki/index.js";
import { RedisRateLimiter } from "../ratelimit/index.js";
import { MemoryReplayGuard, RedisReplayGuard } from "../replay/index.js";
import { PublicKeyCache } from "../signing/index.js";
import { ServedPipeline } from "./served-pipeline.js";
import { CloseStack } from "./close-stack.js";
import { WORKER_NOTES, type WorkerInit, type WorkerTlsMaterial } from "./cluster-primary.js";
import type { ClusterChannel } from "./cluster-rpc.js";
import { dataListener } from "./listeners.js";
import { openRedis } from "./redis.js";
import { remoteNonceGuard, remoteRateLimiter, remoteStore } from "./remote-services.js";

/** One cluster worker: the data listener and the pipeline behind it. */
export interface WorkerApp {
  readonly metrics: PrometheusRecorder;
  /** Listens on the data port (shared with the other workers through the primary); resolves with the port. */
  start(): Promise<number>;
  /** Applies a new configuration's routes, backends and signature policy, and re-reads the signing keys. */
  reload(next: Readonly<PosternConfig>): Promise<{ restartNeeded: string[] }>;
  /** Drains the data listener for `shutdown.drainTimeoutSeconds`, then closes backends and Redis. */
  stop(): Promise<void>;
}

/**
 * A cluster worker's composition root. It owns no durable state: the PKI's material, its
 * revocations and its trust state come from the primary (at start, then each TLS reload and
 * each revocation pushed: new handshakes get the reloaded material, a revoked certificate's
 * connections here are closed); in embedded mode every
 * nonce claim, stream append and rate-limit bucket lives in the primary, reached over the
 * cluster channel; in Redis mode the worker uses Redis directly, as a replica does. Only the
 * forward-signing key ring is opened here, read-only, to sign in this process.
 */
export async function createWorkerApp(config: Readonly<PosternConfig>, deps: { log: Logger; channel: ClusterChannel; now?: () => number }): Promise<WorkerApp> {
  // `config` is the configuration at start (what only a restart changes); what a reload changes is `served.current`.
  const { log, channel } = deps;
  const now = deps.now ?? Date.now;
  const metrics = new PrometheusRecorder();
  channel.handle(WORKER_NOTES.metrics, () => metrics.snapshot());
  // Registered before asking for the material: a revocation pushed meanwhile is not lost.
  const revocations = new RevocationIndex();
  let closeConnectionsOf: (serial: string) => number = () => 0;
  channel.handle(WORKER_NOTES.revoked, ({ serial, revokedAtMs }: { serial: string; revokedAtMs?: number }) => {
    revocations.add(serial);
    const closed = closeConnectionsOf(serial);
    if (revokedAtMs !== undefined) metrics.revocationPropagated((now() - revokedAtMs) / 1000);
    if (closed > 0) log.info("closed the live connections of a revoked certificate", { serial, closed });
  });
  let trustLost = false;
  channel.handle(WORKER_NOTES.trust, ({ lost }: { lost: boolean }) => void (trustLost = lost));
  // The primary checked and applied the material before it sent it; a note that arrives before
  // the answer to `init` is older than that answer (both travel in order on one channel).
  let material: WorkerTlsMaterial | undefined;
  let applyMaterial: () => void = () => undefined;
  channel.handle(WORKER_NOTES.tls, (next: WorkerTlsMaterial) => {
    const before = material;
    material = next;
    try {
      applyMaterial();
    } catch (error) {
      material = before;
      applyMaterial();
      log.error("TLS reload refused in this worker; its new handshakes keep the current certificate and CA bundle", { reason: (error as Error).message });
    }
  });
  const init = await channel.call<WorkerInit>(WORKER_NOTES.init, null, 60_000);
  material = init.material;
  const currentMaterial = () => material ?? init.material;
  for (const serial of init.revoked) revocations.add(serial);
  trustLost ||= init.trustLost;

  const closing = new CloseStack();
  return closing.unwindOnError(async () => {
    const signingKeys = await openSigningKeys(config, now);
    const keyTimer = setInterval(() => void signingKeys.reload().catch(() => undefined), 60_000);
    keyTimer.unref();
    closing.push({ close: async () => clearInterval(keyTimer) });
    const redis = usesRedis(config) ? closing.push(await openRedis(config, { log, metrics })) : undefined;
    const signer: ForwardSigner = { get key() { return signingKeys.active().key; }, get keyid() { return signingKeys.active().keyid; } };
    const backendDeps = {
      signer: () => signer,
      redisGuard: redis ? new RedisReplayGuard({ redis: redis.client, keyPrefix: config.redis.keyPrefix, waitReplicas: config.redis.waitReplicas }) : undefined,
      redis: redis?.client,
      // Never used: every claim goes to Redis or to the primary.
      memoryGuard: new MemoryReplayGuard(now),
      storage: undefined,
      remote: redis ? undefined : { guard: remoteNonceGuard(channel), store: remoteStore(channel) },
      metrics,
      tls: currentMaterial,
      now,
    };
    const served = closing.push(await ServedPipeline.open(config, { backendDeps, log }));
    const rateLimiter = redis ? new RedisRateLimiter(redis.client, config.redis.keyPrefix) : remoteRateLimiter(channel);
    const gateway = served.gateway({ keys: new PublicKeyCache(), rateLimiter, metrics, now });
    const data = dataListener({
      config,
      pki: { current: currentMaterial, revocations },
      metrics,
      log,
      now,
      handshakeShare: init.workers,
      gateway,
      stateLost: () => trustLost,
    });
    closeConnectionsOf = (serial) => data.closeConnectionsOf(serial);
    applyMaterial = () => {
      data.reloadSecureContext();
      void served.refreshTlsClients();
    };
    return {
      metrics,
      async start() {
        const { host, port } = config.listeners.data;
        const address = await data.listen(host, port);
        channel.notify(WORKER_NOTES.listening, { port: address.port });
        return address.port;
      },
      async reload(next) {
        await signingKeys.reload();
        const { config: applied, restartNeeded } = reloadable(served.current.config, next);
        await served.apply(applied);
        return { restartNeeded };
      },
      async stop() {
        await data.close(served.current.config.shutdown.drainTimeoutSeconds * 1000);
        await closing.closeAll();
      },
    };
  });
}
