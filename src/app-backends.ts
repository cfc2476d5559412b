import type { PosternConfig } from "./config/schema.js";
import type { Backend } from "./forward/backend.js";
import { FileStreamBackend } from "./forward/file-stream.js";
import { HttpBackend } from "./forward/http-backend.js";
import { RedisStreamBackend } from "./forward/redis-stream.js";
import type { ForwardSigner } from "./forward/stream-entry.js";
import type { MetricsRecorder } from "./metrics/recorder.js";
import type { PkiMaterial } from "./pki/bootstrap.js";
import type { MemoryReplayGuard } from "./replay/memory-guard.js";
import { streamKey } from "./replay/nonce.js";
import type { RedisReplayGuard } from "./replay/redis-guard.js";

/** What backends share across config reloads: the nonce guard must outlive any backend. */
export interface BackendDeps {
  signer: () => ForwardSigner;
  redisGuard: RedisReplayGuard | undefined;
  memoryGuard: MemoryReplayGuard;
  metrics: MetricsRecorder;
  pki: PkiMaterial;
  now: () => number;
}

/**
 * Builds one backend per configured name: a Redis Stream (Redis mode) or a JSON-lines file
 * (embedded mode) for `stream`, an undici pool for `http`. Throws ConfigError naming the key
 * when a backend's settings cannot work.
 */
export async function buildBackends(config: Readonly<PosternConfig>, deps: BackendDeps): Promise<Map<string, Backend>> {
  const backends = new Map<string, Backend>();
  try {
    for (const [name, backend] of Object.entries(config.backends)) {
      if (backend.type === "http") {
        backends.set(
          name,
          new HttpBackend({
            name,
            config: backend,
            guard: deps.redisGuard ?? deps.memoryGuard,
            signer: deps.signer(),
            metrics: deps.metrics,
            caBundlePem: deps.pki.caBundlePem,
            clientCertificate: { certPem: deps.pki.serverCertChainPem, keyPem: deps.pki.serverKeyPem },
            now: deps.now,
          }),
        );
      } else if (deps.redisGuard) {
        const key = streamKey(config.redis.keyPrefix, name, backend.stream);
        backends.set(name, new RedisStreamBackend(name, { key, maxLength: backend.maxLength }, deps.redisGuard, deps.signer()));
      } else {
        backends.set(name, await FileStreamBackend.open({ name, dataDir: config.data.dir, guard: deps.memoryGuard, signer: deps.signer() }));
      }
    }
  } catch (error) {
    await Promise.all([...backends.values()].map((b) => b.close()));
    throw error;
  }
  return backends;
}
