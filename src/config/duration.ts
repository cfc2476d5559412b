import { PosternError } from "../errors.js";

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** Parses "30s", "15m", "12h", "7d" (or plain seconds) into whole seconds. */
export function parseDuration(text: string, name: string): number {
  const match = /^(\d{1,9})([smhd]?)$/.exec(text.trim());
  if (!match) throw new PosternError("bad-request", `${name} must be a duration such as 30s, 15m, 12h or 7d`);
  return Number(match[1]) * UNITS[match[2] || "s"]!;
}
