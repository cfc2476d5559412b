import { Cluster, Redis } from "ioredis";

/** A standalone or cluster client: the guard, the stores and the limiter use the commands both have. */
export type RedisClient = Redis | Cluster;

/**
 * Opens an ioredis client (standalone, or Redis Cluster from comma-separated seed URLs) that
 * fails fast while Redis is away (no offline queue) and reconnects by itself. Resolves once
 * connected, or after `waitSeconds` with a client that keeps trying (the caller reports
 * not-ready meanwhile).
 */
export async function connectRedis(
  url: string,
  options: { cluster?: boolean; commandTimeoutSeconds: number; waitSeconds?: number; onState?: (up: boolean) => void },
): Promise<RedisClient> {
  const common = {
    commandTimeout: options.commandTimeoutSeconds * 1000,
    connectTimeout: 5000,
    maxRetriesPerRequest: 0,
  };
  const retry = (attempt: number) => Math.min(100 * attempt, 2000);
  const redis: RedisClient = options.cluster
    ? new Cluster(
        url.split(",").map((seed) => {
          const u = new URL(seed.trim());
          return { host: u.hostname, port: Number(u.port || 6379) };
        }),
        {
          lazyConnect: true,
          enableOfflineQueue: false,
          clusterRetryStrategy: retry,
          redisOptions: { ...common, ...credentials(url.split(",")[0]!) },
        },
      )
    : new Redis(url, { ...common, lazyConnect: true, enableOfflineQueue: false, retryStrategy: retry });
  redis.on("ready", () => options.onState?.(true));
  redis.on("close", () => options.onState?.(false));
  redis.on("end", () => options.onState?.(false));
  // ioredis emits 'error' on every failed reconnect; state is reported through onState.
  redis.on("error", () => undefined);
  const connected = redis.connect().then(
    () => true,
    () => false,
  );
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), (options.waitSeconds ?? 3) * 1000)));
  await Promise.race([connected, waited]);
  clearTimeout(timer);
  return redis;
}

function credentials(seed: string): { username?: string; password?: string; tls?: object } {
  const u = new URL(seed.trim());
  return {
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
  };
}
