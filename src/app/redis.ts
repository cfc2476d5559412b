import type { PosternConfig } from "../config/index.js";
import type { Logger } from "../log.js";
import type { MetricsRecorder } from "../metrics/index.js";
import { connectRedis, describeRedis, reachRedis, RedisHealth, type RedisClient } from "../redis/index.js";

/** The gateway's Redis connection and what follows its health. */
export interface RedisLink {
  readonly client: RedisClient;
  /** How errors and logs name it (no password). */
  readonly name: string;
  readonly up: () => boolean;
  /** Called each time Redis answers again after an outage (its data may not have survived). */
  onBack(listener: () => void): void;
  close(): Promise<void>;
}

/**
 * Connects to the configured Redis and follows its health: a key in each backend's hash slot
 * must answer (readiness and `postern_redis_up` follow it). @throws naming Redis when it does
 * not answer at start.
 */
export async function openRedis(config: Readonly<PosternConfig>, deps: { log: Logger; metrics: MetricsRecorder }): Promise<RedisLink> {
  const name = describeRedis(config.redis);
  const listeners: Array<() => void> = [];
  let stopped = false;
  let health: RedisHealth | undefined;
  deps.metrics.redisAvailable(false);
  const client = await connectRedis(config.redis, { onState: (up) => health?.connectionChanged(up) });
  health = new RedisHealth(
    client,
    () => Object.keys(config.backends).map((backend) => `${config.redis.keyPrefix}{${backend}}:health`),
    (up) => {
      deps.metrics.redisAvailable(up);
      if (stopped) return;
      deps.log[up ? "info" : "warn"](up ? "redis connected" : "redis unavailable", { redis: name });
      if (up) for (const listener of listeners) listener();
    },
  );
  const close = async () => {
    stopped = true;
    health?.stop();
    await client.quit().catch(() => client.disconnect());
  };
  try {
    health.start();
    await health.probe();
    await reachRedis(client, name);
  } catch (error) {
    await close();
    throw error;
  }
  return { client, name, up: () => health?.up === true, onBack: (listener) => listeners.push(listener), close };
}
