/**
 * What Redis mode costs Redis: redis-server's CPU (its /proc counters, when it runs on this
 * machine) and the bytes it received (INFO stats total_net_input_bytes). The Redis is shared:
 * other clients' traffic in the same window is counted too, which is why the bench reports a
 * quiet-window background rate next to these numbers. Keys are only ever deleted by this run's prefix.
 */
import { Redis } from "ioredis";
import { deleteKeysWithPrefix } from "../../test/helpers/redis.js";
import { commandName, sampleTree, voluntarySwitches } from "./proc.js";

/** Calls and microseconds per command from INFO commandstats. */
export type CommandStats = Map<string, { calls: number; usec: number }>;

/** Parses INFO commandstats ("cmdstat_evalsha:calls=3,usec=231,..."). */
export function parseCommandStats(info: string): CommandStats {
  const stats: CommandStats = new Map();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    stats.set(match[1]!, { calls: Number(match[2]), usec: Number(match[3]) });
  }
  return stats;
}

export interface RedisSample {
  netInputBytes: number;
  commands: CommandStats;
  /** undefined when redis-server is not a process this machine can read. */
  cpuSeconds?: number;
  /** Times its event loop slept and was woken by work (main thread's voluntary context switches); as cpuSeconds. */
  wakeUps?: number;
}

export class RedisProbe {
  private constructor(
    private readonly redis: Redis,
    readonly version: string,
    /** redis-server's pid when it runs here. */
    readonly pid: number | undefined,
  ) {}

  /** Connects and reads INFO server; undefined (with the reason) when Redis does not answer. */
  static async connect(url: string): Promise<RedisProbe | string> {
    const redis = new Redis(url, { lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 1, retryStrategy: () => null });
    redis.on("error", () => undefined);
    try {
      await redis.connect();
      const info = await redis.info("server");
      const pid = Number(/^process_id:(\d+)/m.exec(info)?.[1]);
      const local = ["127.0.0.1", "localhost", "[::1]"].includes(new URL(url).hostname);
      const readable = local && Number.isInteger(pid) && (commandName(pid) ?? "").startsWith("redis");
      return new RedisProbe(redis, /^redis_version:(\S+)/m.exec(info)?.[1] ?? "?", readable ? pid : undefined);
    } catch (error) {
      redis.disconnect();
      return `Redis at ${url} did not answer (${(error as Error).message})`;
    }
  }

  async sample(): Promise<RedisSample> {
    const cpu = this.pid === undefined ? undefined : sampleTree(this.pid)?.cpuSeconds;
    const wakeUps = this.pid === undefined ? undefined : voluntarySwitches(this.pid);
    const stats = await this.redis.info("stats");
    const commands = parseCommandStats(await this.redis.info("commandstats"));
    return {
      netInputBytes: Number(/^total_net_input_bytes:(\d+)/m.exec(stats)?.[1] ?? Number.NaN),
      commands,
      ...(cpu === undefined ? {} : { cpuSeconds: cpu }),
      ...(wakeUps === undefined ? {} : { wakeUps }),
    };
  }

  /** Deletes this run's keys (SCAN + DEL under `prefix`, never FLUSH); returns how many. */
  deleteKeys(prefix: string): Promise<number> {
    return deleteKeysWithPrefix(this.redis, prefix);
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
