import { join } from "node:path";
import type { Logger } from "../log.js";
import type { MetricsRecorder, StorageFailure } from "../metrics/index.js";
import type { StorageFileSystem } from "./file-system.js";
import type { CommitReporter } from "./group-commit.js";

/** How often a failing storage is probed. */
export const DEFAULT_PROBE_INTERVAL_MS = 1000;
/**
 * The probe writes as much as the largest batch that failed since storage went down (so "a
 * page fits again" is not taken for "the write that failed would fit"), within these bounds.
 */
export const MIN_PROBE_BYTES = 16 * 1024;
export const MAX_PROBE_BYTES = 8 * 1024 * 1024;
/** The probe file, in the data directory; no backend file can have this name (they end in .jsonl). */
export const PROBE_FILE = ".postern-storage-probe";

export interface StorageHealthOptions {
  dir: string;
  fs: StorageFileSystem;
  metrics: MetricsRecorder;
  log: Logger;
  /** Default DEFAULT_PROBE_INTERVAL_MS. */
  probeIntervalMs?: number;
}

/**
 * Whether embedded storage takes writes: down from the first failed batch, up again at the
 * next batch that succeeds, or, with no traffic, at the first probe that succeeds (write as
 * many bytes as the largest failed batch, fsync and remove a file in the data directory,
 * every probeIntervalMs while down).
 * Readiness follows `up`, so a load balancer stops sending while the disk is full and sends
 * again once it is not, without a restart. The probe timer is unref'd and stops at close.
 */
export class StorageHealth implements CommitReporter {
  private healthy = true;
  private probeBytes = MIN_PROBE_BYTES;
  private timer: NodeJS.Timeout | undefined;
  private probing: Promise<void> | undefined;
  private closed = false;
  private readonly interval: number;

  constructor(private readonly options: StorageHealthOptions) {
    this.interval = options.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS;
    options.metrics.storageUp(true);
  }

  get up(): boolean {
    return this.healthy;
  }

  succeeded(): void {
    if (this.healthy) return;
    this.healthy = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.options.metrics.storageUp(true);
    this.options.log.info("storage takes writes again");
  }

  failed(failure: StorageFailure, error: unknown, bytes: number): void {
    this.options.metrics.storageFailure(failure);
    const wanted = Math.min(MAX_PROBE_BYTES, Math.max(MIN_PROBE_BYTES, bytes));
    this.probeBytes = this.healthy ? wanted : Math.max(this.probeBytes, wanted);
    if (!this.healthy) return;
    this.healthy = false;
    this.options.metrics.storageUp(false);
    this.options.log.error("storage write failed: answering 503 storage-unavailable and not ready until a write succeeds", {
      failure,
      error: String((error as Error | undefined)?.message ?? error),
    });
    this.schedule();
  }

  private schedule(): void {
    if (this.closed || this.healthy || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.probing = this.probe().finally(() => {
        this.probing = undefined;
        this.schedule();
      });
    }, this.interval);
    this.timer.unref();
  }

  /** Write, fsync, remove: if all of that works, storage is back. */
  private async probe(): Promise<void> {
    const { fs, dir } = this.options;
    const path = join(dir, PROBE_FILE);
    try {
      const { file } = await fs.openFile(path);
      try {
        const data = Buffer.alloc(this.probeBytes, 0x0a);
        for (let done = 0; done < data.length; ) {
          const n = await file.write(data, done, data.length - done, done);
          if (!(n > 0)) throw new Error("the probe write made no progress");
          done += n;
        }
        await file.sync();
      } finally {
        await file.close().catch(() => undefined);
        await fs.remove(path).catch(() => undefined);
      }
      this.succeeded();
    } catch {
      // Still failing: the next probe comes after the interval.
    }
  }

  /** Stops probing. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.probing;
  }
}
