import { parseDuration } from "../config/index.js";
import { PosternError } from "../errors.js";
import { UsageError } from "./usage.js";

/** A duration (`30s`, `15m`, `12h`, `7d`) in seconds; bad input is a UsageError naming `flag`. */
export function parseDurationSeconds(text: string, flag: string): number {
  try {
    return parseDuration(text, flag);
  } catch (error) {
    if (error instanceof PosternError) throw new UsageError(`${error.message}, not ${JSON.stringify(text.slice(0, 40))}`);
    throw error;
  }
}
