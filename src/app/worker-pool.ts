import cluster, { type Worker } from "node:cluster";
import type { Logger } from "../log.js";
import { ClusterChannel } from "./cluster-rpc.js";

export interface WorkerPoolOptions {
  count: number;
  log: Logger;
  /** Registers the primary's services on a new worker's channel. */
  serve: (channel: ClusterChannel) => void;
  /** A worker was replaced; `crash` when it died by a signal or a non-zero exit. */
  onReplaced: (reason: "crash" | "exit") => void;
  /** The number of workers serving changed. */
  onLiveCount: (count: number) => void;
  /** How long the workers may take to listen at start. */
  startTimeoutMs?: number;
  /** Backoff before a replacement: doubles from `minRestartDelayMs` per quick death, up to `maxRestartDelayMs`. */
  minRestartDelayMs?: number;
  maxRestartDelayMs?: number;
}

interface Slot {
  index: number;
  worker: Worker | undefined;
  channel: ClusterChannel | undefined;
  listening: boolean;
  startedAtMs: number;
  quickDeaths: number;
  timer?: NodeJS.Timeout;
}

/** A worker that lived this long was healthy: its slot's backoff starts over. */
const HEALTHY_AFTER_MS = 30_000;

/**
 * The cluster primary's workers: forks them, lets each one reach the primary's services over
 * its channel, replaces one that dies (with a backoff that doubles while replacements keep
 * dying young, logged and counted), forwards signals, and drains them all at shutdown. A
 * worker that dies before the pool has started fails the start: a configuration that cannot
 * serve must not loop.
 */
export class WorkerPool {
  private readonly slots: Slot[];
  private stopping = false;
  private started = false;
  private failStart: ((error: Error) => void) | undefined;
  private readonly onListening = new Set<() => void>();
  /** The data listener's port as the workers report it (one shared handle: the same for all). */
  dataPort: number | undefined;

  constructor(private readonly options: WorkerPoolOptions) {
    this.slots = Array.from({ length: options.count }, (_, index) => ({ index, worker: undefined, channel: undefined, listening: false, startedAtMs: 0, quickDeaths: 0 }));
  }

  /** Forks every worker; resolves once all of them listen. @throws when one exits first or the start times out. */
  async start(): Promise<void> {
    const timeoutMs = this.options.startTimeoutMs ?? 120_000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the workers did not all listen within ${timeoutMs / 1000} s`)), timeoutMs);
      this.failStart = (error) => {
        clearTimeout(timer);
        reject(error);
      };
      const check = () => {
        if (this.slots.every((s) => s.listening)) {
          clearTimeout(timer);
          this.onListening.delete(check);
          resolve();
        }
      };
      this.onListening.add(check);
      for (const slot of this.slots) this.fork(slot);
    });
    this.started = true;
    this.failStart = undefined;
  }

  /** Workers that listen now. */
  get live(): number {
    return this.slots.filter((s) => s.listening).length;
  }

  /** Process ids of the live workers. */
  get pids(): number[] {
    return this.slots.flatMap((s) => (s.listening && s.worker?.process.pid !== undefined ? [s.worker.process.pid] : []));
  }

  /** A one-way note to every worker that has a channel (revocations, state). */
  notifyAll(op: string, args: unknown): void {
    for (const slot of this.slots) slot.channel?.notify(op, args);
  }

  /** Calls `op` on every listening worker; workers that fail or time out are left out. */
  async callAll<R>(op: string, args: unknown, timeoutMs: number): Promise<R[]> {
    const answers = await Promise.allSettled(this.slots.filter((s) => s.listening && s.channel).map((s) => s.channel!.call<R>(op, args, timeoutMs)));
    return answers.flatMap((a) => (a.status === "fulfilled" ? [a.value] : []));
  }

  /** Sends `signal` to every worker process (SIGHUP: each runs its own reload). */
  signal(signal: NodeJS.Signals): void {
    for (const slot of this.slots) slot.worker?.process.kill(signal);
  }

  /**
   * Tells every worker to drain (stop accepting, finish in-flight requests for `drainMs`, exit)
   * and resolves once all have exited; one still there `drainMs` + 5 s later is killed.
   */
  async drain(drainMs: number): Promise<void> {
    this.stopping = true;
    for (const slot of this.slots) clearTimeout(slot.timer);
    const alive = this.slots.filter((s) => s.worker && !s.worker.isDead());
    await Promise.all(
      alive.map(
        (slot) =>
          new Promise<void>((resolve) => {
            const worker = slot.worker!;
            const kill = setTimeout(() => worker.process.kill("SIGKILL"), drainMs + 5000);
            worker.once("exit", () => {
              clearTimeout(kill);
              resolve();
            });
            if (worker.isDead()) resolve();
            slot.channel?.notify("drain", { drainMs });
          }),
      ),
    );
  }

  private fork(slot: Slot): void {
    const worker = cluster.fork({ POSTERN_WORKER_INDEX: String(slot.index) });
    const channel = new ClusterChannel({
      send: (message) => {
        if (worker.isConnected()) worker.send(message as never);
      },
      onMessage: (listener) => worker.on("message", listener),
      onClose: (listener) => worker.once("disconnect", listener),
    });
    Object.assign(slot, { worker, channel, listening: false, startedAtMs: Date.now() });
    this.options.serve(channel);
    channel.handle<{ port: number }, void>("listening", ({ port }) => {
      slot.listening = true;
      this.dataPort ??= port;
      this.options.onLiveCount(this.live);
      for (const check of this.onListening) check();
    });
    worker.once("exit", (code, signal) => this.onExit(slot, worker, code, signal));
  }

  private onExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    if (slot.worker !== worker) return;
    const wasListening = slot.listening;
    Object.assign(slot, { worker: undefined, channel: undefined, listening: false });
    this.options.onLiveCount(this.live);
    if (this.stopping) return;
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    if (!this.started) {
      this.failStart?.(new Error(`worker ${slot.index + 1} ended during start (${how})${wasListening ? "" : ", before it listened"}`));
      return;
    }
    const lived = Date.now() - slot.startedAtMs;
    slot.quickDeaths = lived >= HEALTHY_AFTER_MS ? 0 : slot.quickDeaths + 1;
    const min = this.options.minRestartDelayMs ?? 100;
    const max = this.options.maxRestartDelayMs ?? 30_000;
    const delayMs = slot.quickDeaths === 0 ? 0 : Math.min(max, min * 2 ** (slot.quickDeaths - 1));
    const reason = signal !== null || code !== 0 ? "crash" : "exit";
    this.options.log.error("a worker died; replacing it", { worker: slot.index + 1, workerPid: worker.process.pid, how, livedSeconds: Math.round(lived / 1000), restartInMs: delayMs });
    this.options.onReplaced(reason);
    slot.timer = setTimeout(() => {
      if (!this.stopping) this.fork(slot);
    }, delayMs);
  }
}
