import { createRequire } from "node:module";
import type { Cluster, Redis, RedisOptions } from "ioredis";
import type { PosternConfig } from "../config/index.js";

const requireCjs = createRequire(import.meta.url);

/**
 * ioredis, loaded the first time a client is opened: embedded mode and the CLI never pay for
 * loading it (about 50 ms of a gateway's start). It is CommonJS, so `require` loads it at once.
 */
function ioredis(): typeof import("ioredis") {
  return requireCjs("ioredis") as typeof import("ioredis");
}

/** A standalone, Sentinel-managed or cluster client: the guard, the stores and the limiter use the commands all have. */
export type RedisClient = Redis | Cluster;

type RedisSection = PosternConfig["redis"];

/** How an operator would name the configured Redis in an error message (no password). */
export function describeRedis(redis: RedisSection): string {
  if (redis.sentinel) return `Redis master "${redis.sentinel.masterName}" through Sentinel ${redis.sentinel.nodes.join(",")}`;
  const urls = redis.url.split(",").map((seed) => {
    try {
      const u = new URL(seed.trim());
      return `${u.protocol}//${u.host}${u.pathname === "/" ? "" : u.pathname}`;
    } catch {
      return "(an unparseable URL)";
    }
  });
  return `${redis.cluster ? "Redis Cluster" : "Redis"} at ${urls.join(",")}`;
}

/**
 * Opens an ioredis client (standalone; Sentinel, following failovers; or Redis Cluster from
 * comma-separated seed URLs) that fails fast while Redis is away (no offline queue) and
 * reconnects by itself. Resolves once connected, or after `waitSeconds` with a client that
 * keeps trying (the caller reports not-ready meanwhile).
 */
export async function connectRedis(
  redis: RedisSection,
  options: { waitSeconds?: number; onState?: (up: boolean) => void } = {},
): Promise<RedisClient> {
  const common: RedisOptions = {
    commandTimeout: redis.commandTimeoutSeconds * 1000,
    connectTimeout: 5000,
    maxRetriesPerRequest: 0,
    lazyConnect: true,
    enableOfflineQueue: false,
    // Commands issued while earlier ones are on their way go out together (one write, one read on
    // Redis's side): under load, redis-server's CPU per message falls by a third (npm run bench).
    enableAutoPipelining: true,
  };
  const { Cluster, Redis } = ioredis();
  const retry = (attempt: number) => Math.min(100 * attempt, 2000);
  const firstUrl = redis.url.split(",")[0]!.trim();
  let client: RedisClient;
  if (redis.cluster) {
    client = new Cluster(
      redis.url.split(",").map((seed) => {
        const u = new URL(seed.trim());
        return { host: u.hostname, port: Number(u.port || 6379) };
      }),
      { lazyConnect: true, enableOfflineQueue: false, clusterRetryStrategy: retry, redisOptions: { ...common, ...credentials(firstUrl) } },
    );
  } else if (redis.sentinel) {
    client = new Redis({
      ...common,
      ...(firstUrl ? credentials(firstUrl) : {}),
      sentinels: redis.sentinel.nodes.map((node) => {
        const colon = node.lastIndexOf(":");
        return { host: node.slice(0, colon), port: Number(node.slice(colon + 1)) };
      }),
      name: redis.sentinel.masterName,
      sentinelRetryStrategy: retry,
      retryStrategy: retry,
    });
  } else {
    client = new Redis(firstUrl, { ...common, retryStrategy: retry });
  }
  client.on("ready", () => options.onState?.(true));
  client.on("close", () => options.onState?.(false));
  client.on("end", () => options.onState?.(false));
  // ioredis emits 'error' on every failed reconnect; state is reported through onState.
  client.on("error", () => undefined);
  const connected = client.connect().then(
    () => true,
    () => false,
  );
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), (options.waitSeconds ?? 3) * 1000)));
  await Promise.race([connected, waited]);
  clearTimeout(timer);
  return client;
}

function credentials(url: string): { username?: string; password?: string; tls?: object } {
  const u = new URL(url);
  return {
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
  };
}

/**
 * A second connection for SUBSCRIBE (a subscribed connection can run nothing else) that queues
 * while (re)connecting and resubscribes by itself; the caller quits it.
 */
export function subscriberOf(client: RedisClient): Redis {
  const options = { lazyConnect: false, enableOfflineQueue: true, maxRetriesPerRequest: null };
  const sub = (client instanceof ioredis().Cluster ? client.duplicate(undefined, { ...options, redisOptions: {} }) : client.duplicate(options)) as Redis;
  sub.on("error", () => undefined);
  return sub;
}

/** Redis answered with an error (the command ran and was refused), as opposed to a connection failure or timeout. */
export function isRedisReplyError(error: unknown): boolean {
  // Only a loaded ioredis makes reply errors: asking for it here loads nothing new.
  return error instanceof ioredis().ReplyError;
}
