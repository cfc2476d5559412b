import { readFileSync } from "node:fs";
import type { PosternConfig } from "../config/index.js";
import { type Backend, type Delivery, FileStreamBackend, HttpBackend, type PreparedEntry, RedisStreamBackend, RemoteFileStreamBackend, type StreamBackendConfig, compileStreamTemplate, type ForwardSigner } from "../forward/index.js";
import type { MetricsRecorder } from "../metrics/index.js";
import type { PkiMaterial } from "../pki/index.js";
import type { RedisClient } from "../redis/index.js";
import type { MemoryReplayGuard, NonceGuard, RedisReplayGuard } from "../replay/index.js";
import type { EmbeddedStorage } from "./storage.js";

/** What backends share across config reloads: the nonce guard must outlive any backend. */
export interface BackendDeps {
  signer: () => ForwardSigner;
  redisGuard: RedisReplayGuard | undefined;
  /** The Redis connection the guard runs on (Redis mode). */
  redis: RedisClient | undefined;
  memoryGuard: MemoryReplayGuard;
  /** Embedded mode's files and nonce journal (undefined in Redis mode). */
  storage: EmbeddedStorage | undefined;
  metrics: MetricsRecorder;
  /** The TLS material served now: an HTTP backend trusts its CA bundle and presents its server certificate. */
  tls: () => Pick<PkiMaterial, "caBundlePem" | "serverCertChainPem" | "serverKeyPem">;
  now: () => number;
  /**
   * A cluster worker in embedded mode: the nonce set and the message files belong to the
   * primary, reached through these (HTTP backends' claims, stream backends' claim-and-append).
   */
  remote?: { guard: NonceGuard; store: (backend: string, entry: PreparedEntry) => Promise<Delivery> } | undefined;
}

/**
 * Builds one backend per configured name (the configuration was checked when it was loaded):
 * a Redis Stream (Redis mode) or a JSON-lines file (embedded mode) for `stream`, an undici
 * pool for `http`. What was built is closed again when a later one fails.
 */
export async function buildBackends(config: Readonly<PosternConfig>, deps: BackendDeps): Promise<Map<string, Backend>> {
  const backends = new Map<string, Backend>();
  try {
    for (const [name, backend] of Object.entries(config.backends)) {
      if (backend.type === "http") {
        const tls = deps.tls();
        backends.set(
          name,
          new HttpBackend({
            name,
            config: backend,
            guard: deps.redisGuard ?? deps.remote?.guard ?? deps.storage?.nonces ?? deps.memoryGuard,
            signer: deps.signer(),
            metrics: deps.metrics,
            caBundlePem: backend.tls.caFile === undefined ? tls.caBundlePem : readFileSync(backend.tls.caFile, "utf8"),
            clientCertificate: { certPem: tls.serverCertChainPem, keyPem: tls.serverKeyPem },
            now: deps.now,
          }),
        );
      } else {
        backends.set(name, await buildStreamBackend(config, name, backend, deps));
      }
    }
  } catch (error) {
    await Promise.all([...backends.values()].map((b) => b.close()));
    throw error;
  }
  return backends;
}

/** A stream backend: Redis Stream(s) in Redis mode; in embedded mode one file, or one per resolved name of a template. */
async function buildStreamBackend(config: Readonly<PosternConfig>, name: string, backend: StreamBackendConfig, deps: BackendDeps): Promise<Backend> {
  const template = compileStreamTemplate(backend.stream);
  if (deps.redisGuard && deps.redis) {
    return RedisStreamBackend.open({ name, keyPrefix: config.redis.keyPrefix, config: backend, template, guard: deps.redisGuard, redis: deps.redis, signer: deps.signer() });
  }
  if (deps.remote) return new RemoteFileStreamBackend({ name, template, signer: deps.signer(), store: deps.remote.store });
  if (!deps.storage) throw new Error("embedded mode has no storage");
  const files = await deps.storage.streams.open(name, template.fixedName, deps.storage.horizonMs(config));
  return new FileStreamBackend({ name, template, maxStreams: backend.maxStreams, files, guard: deps.memoryGuard, signer: deps.signer() });
}
