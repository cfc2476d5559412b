import type { PosternConfig } from "./schema.js";

/** Sections a reload cannot change in a running process: they need a restart. */
export const RESTART_SECTIONS = ["listeners", "tls", "pki", "redis", "data", "limits", "shutdown", "log", "workers"] as const;

/**
 * What a reload may apply: `next` with every restart-only section kept as it runs now, and the
 * names of the sections that differ there (reported, not applied).
 */
export function reloadable(current: Readonly<PosternConfig>, next: Readonly<PosternConfig>): { config: Readonly<PosternConfig>; restartNeeded: string[] } {
  const restartNeeded = RESTART_SECTIONS.filter((key) => JSON.stringify(next[key]) !== JSON.stringify(current[key]));
  const config = { ...next, ...Object.fromEntries(restartNeeded.map((key) => [key, current[key]])) } as Readonly<PosternConfig>;
  return { config, restartNeeded };
}
