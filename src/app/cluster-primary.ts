import { PosternError } from "../errors.js";
import { type Backend, FileStreamBackend, type PreparedEntry } from "../forward/index.js";
import type { Logger } from "../log.js";
import type { PrometheusRecorder } from "../metrics/index.js";
import type { PkiRuntime, ServingMaterial } from "../pki/index.js";
import type { BucketLimit, RateLimiter } from "../ratelimit/index.js";
import type { NonceClaim } from "../replay/index.js";
import type { ClusterChannel } from "./cluster-rpc.js";
import { PRIMARY_OPS } from "./remote-services.js";
import type { EmbeddedStorage } from "./storage.js";
import { WorkerPool } from "./worker-pool.js";

/** The TLS material a worker's data listener serves, as the primary sends it. */
export interface WorkerTlsMaterial {
  serverKeyPem: string;
  serverCertChainPem: string;
  caBundlePem: string;
}

/** What a worker receives from the primary before it serves. */
export interface WorkerInit {
  /** The TLS material served now (later reloads follow as `tls` notes). */
  material: WorkerTlsMaterial;
  /** Every revoked serial the primary knows; later ones follow as `revoked` notes. */
  revoked: string[];
  trustLost: boolean;
  /** How many workers share the data listener (each enforces its share of the handshake limit). */
  workers: number;
}

/** Notes the primary sends every worker. */
export const WORKER_NOTES = { revoked: "revoked", trust: "trust", tls: "tls", drain: "drain", metrics: "metrics", init: "init", listening: "listening" } as const;

export interface ClusterPrimaryDeps {
  count: number;
  log: Logger;
  metrics: PrometheusRecorder;
  pki: PkiRuntime;
  /** The current backends (they change with a reload). */
  backends: () => ReadonlyMap<string, Backend>;
  storage: EmbeddedStorage | undefined;
  rateLimiter: RateLimiter;
  /** The TLS material of the moment and its reloads (the primary's reloader). */
  tls: { current(): ServingMaterial; onApplied(listener: (material: ServingMaterial) => void): void };
}

const workerMaterial = (m: ServingMaterial): WorkerTlsMaterial => ({ serverKeyPem: m.serverKeyPem, serverCertChainPem: m.serverCertChainPem, caBundlePem: m.caBundlePem });

/**
 * The primary's side of a cluster: the worker pool, and what the workers ask of the one
 * process that owns the embedded state (claim-and-append of stream backends, the nonce
 * journal, rate-limit buckets) and the PKI (its material at start, then every TLS reload, every
 * revocation and every change of the trust state, pushed). One scrape of /metrics merges the workers'.
 */
export function startClusterPrimary(deps: ClusterPrimaryDeps): { pool: WorkerPool; stop(): void } {
  const { pki, metrics, log } = deps;
  const serve = (channel: ClusterChannel) => {
    channel.handle(WORKER_NOTES.init, (): WorkerInit => ({
      // The material of the moment: a worker started after a reload (a replacement) serves the reloaded one.
      material: workerMaterial(deps.tls.current()),
      revoked: pki.revocations.list(),
      trustLost: pki.trust.lost,
      workers: deps.count,
    }));
    channel.handle(PRIMARY_OPS.store, ({ backend, entry }: { backend: string; entry: PreparedEntry }) => {
      const target = deps.backends().get(backend);
      if (!(target instanceof FileStreamBackend)) throw new PosternError("backend-unavailable", `backend ${backend} is not an embedded stream in the primary's configuration`, { extensions: { retryAfterSeconds: 1 } });
      return target.store(entry);
    });
    const nonces = () => {
      if (!deps.storage) throw new PosternError("internal", "the primary has no embedded storage (Redis mode)");
      return deps.storage.nonces;
    };
    channel.handle(PRIMARY_OPS.claim, ({ claim, messageId }: { claim: NonceClaim; messageId: string }) => nonces().claim(claim, messageId));
    channel.handle(PRIMARY_OPS.release, ({ claim, messageId }: { claim: NonceClaim; messageId: string }) => nonces().release(claim, messageId));
    channel.handle(PRIMARY_OPS.take, ({ key, limit }: { key: string; limit: BucketLimit }) => deps.rateLimiter.take(key, limit));
    channel.handle(PRIMARY_OPS.peek, ({ key, limit }: { key: string; limit: BucketLimit }) => deps.rateLimiter.peek(key, limit));
  };
  const pool = new WorkerPool({
    count: deps.count,
    log,
    serve,
    onReplaced: (reason) => metrics.workerReplaced(reason),
    onLiveCount: (count) => metrics.workersLive(count),
  });
  metrics.workersLive(0);
  metrics.aggregateWith(() => pool.callAll(WORKER_NOTES.metrics, null, 5000));
  // Every serial the index learns (this instance's revocations, another replica's through
  // Redis, the periodic catch-up), and the time of the revocations that carry one.
  pki.revocations.onAdded((serial) => pool.notifyAll(WORKER_NOTES.revoked, { serial }));
  deps.tls.onApplied((material) => pool.notifyAll(WORKER_NOTES.tls, workerMaterial(material)));
  pki.onRevoked((entry) => pool.notifyAll(WORKER_NOTES.revoked, { serial: entry.serial, revokedAtMs: entry.revokedAtMs }));
  let lost = pki.trust.lost;
  const trustTimer = setInterval(() => {
    if (pki.trust.lost === lost) return;
    lost = pki.trust.lost;
    pool.notifyAll(WORKER_NOTES.trust, { lost });
  }, 500);
  trustTimer.unref();
  return { pool, stop: () => clearInterval(trustTimer) };
}
