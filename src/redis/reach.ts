import { PosternError } from "../errors.js";
import type { RedisClient } from "./client.js";

/**
 * Fails naming Redis when it does not answer, instead of the first command's bare "Command
 * timed out": `cannot reach Redis at redis://host:port: <why>`. `name` is `describeRedis`'s
 * (no password).
 */
export async function reachRedis(redis: RedisClient, name: string): Promise<void> {
  let lastError: Error | undefined;
  const onError = (error: Error) => (lastError = error);
  redis.on("error", onError);
  try {
    await redis.ping();
  } catch (error) {
    // The connect attempt's own error came before this listener: wait for the next retry's.
    if (!lastError) await new Promise((resolve) => setTimeout(resolve, 2500));
    const why = lastError?.message ?? (error as Error).message;
    throw new PosternError("backend-unavailable", `cannot reach ${name}: ${why}`, { cause: error });
  } finally {
    redis.off("error", onError);
  }
}
