import { join } from "node:path";
import { NONCE_JOURNAL_FILE, type PosternConfig } from "../config/index.js";
import { StreamFiles } from "../forward/index.js";
import type { Logger } from "../log.js";
import type { MetricsRecorder } from "../metrics/index.js";
import { type MemoryReplayGuard, claimHorizonMs, NonceJournal } from "../replay/index.js";
import { LogPool, nodeFileSystem, StorageHealth, type StorageFileSystem } from "../storage/index.js";

/**
 * Embedded mode's durable state, opened once per process before anything is served and kept
 * across config reloads: the message files, the nonce journal, and the storage health that
 * readiness follows.
 */
export interface EmbeddedStorage {
  readonly health: StorageHealth;
  readonly streams: StreamFiles;
  /** The nonce guard of HTTP backends: claims are journalled before the forward starts. */
  readonly nonces: NonceJournal;
  /** How far back a start reads stored claims for this config. */
  horizonMs(config: Readonly<PosternConfig>): number;
  close(): Promise<void>;
}

export interface EmbeddedStorageDeps {
  guard: MemoryReplayGuard;
  metrics: MetricsRecorder;
  log: Logger;
  now: () => number;
  /** Tests inject faults here; default the real file system. */
  fs?: StorageFileSystem | undefined;
}

/** The freshness policies of a config: the global one and each route's. */
function freshnessPolicies(config: Readonly<PosternConfig>): Array<{ maxAgeSeconds: number; clockSkewSeconds: number }> {
  const global = config.signature;
  return [
    global,
    ...config.routes.map((r) => ({
      maxAgeSeconds: r.signature?.maxAgeSeconds ?? global.maxAgeSeconds,
      clockSkewSeconds: r.signature?.clockSkewSeconds ?? global.clockSkewSeconds,
    })),
  ];
}

/**
 * Opens `data.dir` and reads the nonce journal back into `guard` (stream files are read when
 * their backend is built). @throws when the journal cannot be read: fail closed.
 */
export async function openEmbeddedStorage(config: Readonly<PosternConfig>, deps: EmbeddedStorageDeps): Promise<EmbeddedStorage> {
  const fs = deps.fs ?? nodeFileSystem;
  const dataDir = config.data.dir;
  await fs.makeDirectory(dataDir);
  const health = new StorageHealth({ dir: dataDir, fs, metrics: deps.metrics, log: deps.log });
  const pool = new LogPool({ fs, reporter: health, log: deps.log });
  const horizonMs = (c: Readonly<PosternConfig>) => claimHorizonMs(freshnessPolicies(c));
  let nonces: NonceJournal;
  try {
    nonces = await NonceJournal.open({
      path: join(dataDir, NONCE_JOURNAL_FILE),
      fs,
      pool,
      guard: deps.guard,
      log: deps.log,
      now: deps.now,
      horizonMs: horizonMs(config),
      retention: config.data.retention.nonces,
    });
  } catch (error) {
    await health.close();
    throw error;
  }
  const streams = new StreamFiles({ dataDir, fs, pool, guard: deps.guard, log: deps.log, now: deps.now, retention: config.data.retention.messages });
  return {
    health,
    streams,
    nonces,
    horizonMs,
    async close() {
      await pool.close();
      await health.close();
    },
  };
}
