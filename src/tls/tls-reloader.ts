/**
 * The TLS material the listeners serve, reloaded without a restart: on a signal (SIGHUP), after
 * a renewal, and when the files change (a watch on the PKI directory, debounced, plus a slow
 * poll for file systems whose events go missing). A reload applies the server certificate,
 * its key and the CA bundle together, to new handshakes only: open connections keep the
 * context they were made with. A candidate that fails its check keeps the running material,
 * is logged with the file and the reason, and counted (`postern_reload_failures_total`).
 *
 * Watching the directory rather than the files survives both ways files get replaced: an
 * atomic write (a new inode renamed over the old name) and a Kubernetes Secret volume, whose
 * files are symlinks through `..data`, itself a symlink swapped to a new timestamped directory.
 */
import { watch, type FSWatcher } from "node:fs";
import type { Logger } from "../log.js";
import type { MetricsRecorder } from "../metrics/index.js";
import type { ServingCheck, ServingMaterial, ServingPart } from "../pki/index.js";

/** What asked for a reload. */
export type TlsReloadTrigger = "signal" | "watch" | "poll" | "renewal";

/** What a reload did; `serial` is always the certificate new handshakes get afterwards. */
export type TlsReloadOutcome =
  | { status: "applied"; serial: string; previousSerial: string; notAfterMs: number }
  | { status: "unchanged"; serial: string; notAfterMs: number }
  | { status: "refused"; serial: string; notAfterMs: number; part: ServingPart; file: string; reason: string };

export interface TlsReloaderOptions {
  initial: ServingMaterial;
  /** Reads and checks the files again (never throws). */
  read: () => Promise<ServingCheck>;
  /** The directory holding the files; undefined: no watch and no poll (reloads on request only). */
  watchDir?: string | undefined;
  /** Named in the log and the outcome when OpenSSL itself refuses the material. */
  serverCertFile?: string;
  /** The names in `watchDir` whose change means a reload (Kubernetes' `..data` swaps are always one). */
  fileNames: readonly string[];
  debounceMs?: number;
  pollIntervalMs?: number;
  metrics: MetricsRecorder;
  log: Logger;
}

const DEFAULT_DEBOUNCE_MS = 250;
const DEFAULT_POLL_MS = 60_000;
const REWATCH_MS = 5_000;

/** Holds the serving material and reloads it (see the file header); reloads run one at a time. */
export class TlsReloader {
  private material: ServingMaterial;
  private readonly listeners: Array<(material: ServingMaterial) => void> = [];
  private queue: Promise<unknown> = Promise.resolve();
  /** The inputs of the last refused candidate: the watch and the poll do not refuse (log, count) the same files twice. */
  private lastRefusedDigest: string | undefined;
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private poll: NodeJS.Timeout | undefined;
  private rewatch: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: TlsReloaderOptions) {
    this.material = options.initial;
    options.metrics.servingCertificate(this.material.serial, this.material.notAfterMs);
  }

  /** The material new handshakes get. */
  current(): ServingMaterial {
    return this.material;
  }

  /** Called with the new material each time a reload applies one (the listeners' setSecureContext). */
  onApplied(listener: (material: ServingMaterial) => void): void {
    this.listeners.push(listener);
  }

  /** Reads the files again and applies them when they changed and pass their check. */
  reload(trigger: TlsReloadTrigger): Promise<TlsReloadOutcome> {
    const next = this.queue.then(() => this.reloadNow(trigger));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Starts the directory watch and the poll (nothing when no `watchDir` was given). */
  start(): void {
    if (this.options.watchDir === undefined || this.stopped) return;
    this.startWatch();
    this.poll = setInterval(() => void this.reload("poll"), this.options.pollIntervalMs ?? DEFAULT_POLL_MS);
    this.poll.unref();
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    clearTimeout(this.debounce);
    clearTimeout(this.rewatch);
    clearInterval(this.poll);
  }

  private async reloadNow(trigger: TlsReloadTrigger): Promise<TlsReloadOutcome> {
    const { metrics, log } = this.options;
    const before = this.material;
    const check = await this.options.read();
    const served = { serial: before.serial, notAfterMs: before.notAfterMs };
    if (!check.ok) {
      const outcome = { status: "refused" as const, ...served, part: check.part, file: check.file, reason: check.reason };
      // A person's SIGHUP always gets its answer; the watch and the poll say it once per set of files.
      if (trigger !== "signal" && trigger !== "renewal" && check.inputDigest === this.lastRefusedDigest) return outcome;
      this.lastRefusedDigest = check.inputDigest;
      metrics.reloadFailed(check.part);
      log.error("TLS reload refused; new handshakes keep the current certificate and CA bundle", {
        file: check.file,
        reason: check.reason,
        what: check.part,
        trigger,
        serial: before.serial,
      });
      return outcome;
    }
    this.lastRefusedDigest = undefined;
    const fresh = check.material;
    if (fresh.inputDigest === before.inputDigest) return { status: "unchanged", ...served };
    this.material = fresh;
    try {
      for (const listener of this.listeners) listener(fresh);
    } catch (error) {
      // OpenSSL refused what the check let through (a key too weak for its security level...):
      // every listener goes back to the material it served.
      this.material = before;
      for (const listener of this.listeners) listener(before);
      this.lastRefusedDigest = fresh.inputDigest;
      const reason = `refused by OpenSSL: ${(error as Error).message}`;
      metrics.reloadFailed("server_certificate");
      const file = this.options.serverCertFile ?? "server.crt";
      log.error("TLS reload refused; new handshakes keep the current certificate and CA bundle", { file, reason, what: "server_certificate", trigger, serial: before.serial });
      return { status: "refused", ...served, part: "server_certificate", file, reason };
    }
    metrics.reloaded("tls");
    metrics.servingCertificate(fresh.serial, fresh.notAfterMs);
    log.info("TLS material reloaded: new handshakes get it, open connections keep theirs", {
      trigger,
      serial: fresh.serial,
      notAfter: new Date(fresh.notAfterMs).toISOString(),
      ...(fresh.serial !== before.serial ? { previousSerial: before.serial } : {}),
      caBundleChanged: fresh.caBundlePem !== before.caBundlePem,
    });
    return { status: "applied", serial: fresh.serial, previousSerial: before.serial, notAfterMs: fresh.notAfterMs };
  }

  private startWatch(): void {
    const dir = this.options.watchDir!;
    try {
      this.watcher = watch(dir, { persistent: false }, (_event, name) => {
        // A name Node could not tell (null) may be any of them.
        if (name === null || this.options.fileNames.includes(name) || name.startsWith("..")) this.scheduleReload();
      });
      this.watcher.on("error", () => this.watchLater());
    } catch {
      this.watchLater();
    }
  }

  /** The directory went away (or cannot be watched yet): try again, and reload when it is back. */
  private watchLater(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.stopped) return;
    this.rewatch = setTimeout(() => {
      this.startWatch();
      if (this.watcher) this.scheduleReload();
    }, REWATCH_MS);
    this.rewatch.unref();
  }

  /** Trailing debounce: a key and a certificate written one after the other are read as one pair. */
  private scheduleReload(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.reload("watch"), this.options.debounceMs ?? DEFAULT_DEBOUNCE_MS);
    this.debounce.unref();
  }
}
