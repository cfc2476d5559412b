import { resolve, join } from "node:path";
import { NONCE_JOURNAL_FILE, type EmbeddedStorage } from "./storage.js";
import { ConfigError, type PosternConfig } from "../config/index.js";
import { type Backend, FileStreamBackend, HttpBackend, RedisStreamBackend, type StreamBackendConfig, compileStreamTemplate, routeParamNames, type ForwardSigner } from "../forward/index.js";
import type { MetricsRecorder } from "../metrics/index.js";
import type { PkiMaterial } from "../pki/index.js";
import type { MemoryReplayGuard, RedisReplayGuard } from "../replay/index.js";

/** What backends share across config reloads: the nonce guard must outlive any backend. */
export interface BackendDeps {
  signer: () => ForwardSigner;
  redisGuard: RedisReplayGuard | undefined;
  memoryGuard: MemoryReplayGuard;
  /** Embedded mode's files and nonce journal (undefined in Redis mode). */
  storage: EmbeddedStorage | undefined;
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
            guard: deps.redisGuard ?? deps.storage?.nonces ?? deps.memoryGuard,
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
  if (deps.redisGuard) {
    return RedisStreamBackend.open({ name, keyPrefix: config.redis.keyPrefix, config: backend, template, guard: deps.redisGuard, signer: deps.signer() });
  }
  if (!deps.storage) throw new Error("embedded mode has no storage");
  if (template.fixedName !== undefined) refuseReservedFile(config, name);
  const files = await deps.storage.streams.open(name, template.fixedName, deps.storage.horizonMs(config));
  return new FileStreamBackend({ name, template, maxStreams: backend.maxStreams, files, guard: deps.memoryGuard, signer: deps.signer() });
}

/** A fixed-name backend's file must not be one Postern writes for something else. @throws ConfigError. */
function refuseReservedFile(config: Readonly<PosternConfig>, name: string): void {
  const file = resolve(config.data.dir, `${name}.jsonl`);
  const reserved = [join(config.data.dir, NONCE_JOURNAL_FILE), config.pki.auditLogPath ?? join(config.data.dir, "audit.jsonl")];
  if (reserved.some((path) => resolve(path) === file)) {
    throw new ConfigError(`backends.${name}: its embedded file ${file} is one Postern writes for something else; rename the backend`);
  }
}
