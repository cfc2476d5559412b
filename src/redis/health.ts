import type { RedisClient } from "./client.js";

/**
 * Whether Redis can do what the gateway needs right now: a key in every backend's hash slot
 * answers. Connection events alone miss a Redis that froze with its socket open and, in a
 * cluster, a dead master that owns one backend's slot while the other nodes answer. Probed
 * every `intervalMs`, and at once when the connection comes back.
 */
export class RedisHealth {
  private timer: NodeJS.Timeout | undefined;
  private probing = false;
  private state: boolean | undefined;

  constructor(
    private readonly redis: RedisClient,
    /** One key per slot that must answer (read at each probe, so a reload's backends count). */
    private readonly probeKeys: () => readonly string[],
    private readonly onChange: (up: boolean) => void,
    private readonly intervalMs = 1000,
  ) {}

  get up(): boolean {
    return this.state === true;
  }

  start(): void {
    this.timer = setInterval(() => void this.probe(), this.intervalMs).unref();
    void this.probe();
  }

  /** The client's connection state changed: down at once; up only once a probe answers. */
  connectionChanged(up: boolean): void {
    if (up) void this.probe();
    else this.set(false);
  }

  /** EXISTS on each probe key; any error or timeout is "down". */
  async probe(): Promise<boolean> {
    if (this.probing) return this.up;
    this.probing = true;
    try {
      await Promise.all(this.probeKeys().map((key) => this.redis.exists(key)));
      this.set(true);
    } catch {
      this.set(false);
    } finally {
      this.probing = false;
    }
    return this.up;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private set(up: boolean): void {
    if (this.state === up) return;
    this.state = up;
    this.onChange(up);
  }
}
