import { ConfigError } from "./config/load.js";
import type { PosternConfig } from "./config/schema.js";
import type { Backend } from "./forward/backend.js";
import { FileStreamBackend } from "./forward/file-stream.js";
import { HttpBackend } from "./forward/http-backend.js";
import { RedisStreamBackend, type StreamBackendConfig } from "./forward/redis-stream.js";
import { TemplatedFileStreamBackend } from "./forward/stream-files.js";
import { compileStreamTemplate, routeParamNames } from "./forward/stream-template.js";
import type { ForwardSigner } from "./forward/stream-entry.js";
import type { MetricsRecorder } from "./metrics/recorder.js";
import type { PkiMaterial } from "./pki/bootstrap.js";
import type { MemoryReplayGuard } from "./replay/memory-guard.js";
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

/**
 * A stream backend: Redis Stream(s) in Redis mode; in embedded mode one file, or one file per
 * resolved name for a templated `stream`. @throws ConfigError when a route using the backend
 * lacks a path parameter its template reads.
 */
async function buildStreamBackend(
  config: Readonly<PosternConfig>,
  name: string,
  backend: StreamBackendConfig,
  deps: BackendDeps,
): Promise<Backend> {
  const template = compileStreamTemplate(backend.stream);
  config.routes.forEach((route, i) => {
    if (route.backend !== name) return;
    const missing = template.paramNames.filter((param) => !routeParamNames(route.path).includes(param));
    if (missing.length > 0) {
      throw new ConfigError(
        `routes[${i}].path: backends.${name}.stream reads {param.${missing[0]}}, but ${route.path} has no :${missing[0]}`,
      );
    }
  });
  const { memoryGuard: guard } = deps;
  if (deps.redisGuard) {
    return RedisStreamBackend.open({ name, keyPrefix: config.redis.keyPrefix, config: backend, template, guard: deps.redisGuard, signer: deps.signer() });
  }
  if (template.fixedName === undefined) {
    return new TemplatedFileStreamBackend(name, { dataDir: config.data.dir, template, guard, signer: deps.signer() });
  }
  return FileStreamBackend.open({ name, dataDir: config.data.dir, guard, signer: deps.signer() });
}
