import type { ErrorCode } from "../../errors.js";

/** A refusal with a stable code; `detail` is safe to show (no secrets, little raw input). */
export interface Failure {
  ok: false;
  code: ErrorCode;
  detail: string;
}

export type Result<T> = { ok: true; value: T } | Failure;

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

export function fail(code: ErrorCode, detail: string): Failure {
  return { ok: false, code, detail };
}

/** Quote at most a few characters of untrusted input for a `detail`. */
export function excerpt(input: string, max = 32): string {
  const clean = input.replace(/[^\x20-\x7e]/g, "?");
  return JSON.stringify(clean.length > max ? `${clean.slice(0, max)}...` : clean);
}
