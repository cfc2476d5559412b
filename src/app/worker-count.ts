import { availableParallelism } from "node:os";
import type { PosternConfig } from "../config/index.js";

/** `workers` resolved: `auto` is one per core this process may use. */
export function workerCount(config: Pick<PosternConfig, "workers">, cores: () => number = availableParallelism): number {
  return config.workers === "auto" ? Math.max(1, cores()) : config.workers;
}
