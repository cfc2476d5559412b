import type { ServerResponse } from "node:http";
import { PosternError } from "../errors.js";
import type { Logger } from "../log.js";

/**
 * The one place errors become responses: `application/problem+json` (RFC 9457) with a stable
 * `code`. Anything that is not a PosternError is logged and answered as `internal`, never
 * with its message or stack.
 */
export function sendProblem(res: ServerResponse, error: unknown, log: Logger, instance?: string): PosternError {
  const problem = toPosternError(error);
  if (problem.code === "internal") {
    log.error("internal error", { error: describe(error), instance });
  }
  if (res.headersSent) {
    res.destroy();
    return problem;
  }
  const body = JSON.stringify(problem.toProblem(instance));
  const headers: Record<string, string | number> = {
    "content-type": "application/problem+json",
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
  };
  const retryAfter = problem.extensions.retryAfterSeconds;
  if (typeof retryAfter === "number") headers["retry-after"] = Math.ceil(retryAfter);
  res.writeHead(problem.status, headers);
  res.end(body);
  return problem;
}

export function sendJson(res: ServerResponse, status: number, value: unknown, extraHeaders: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
    ...extraHeaders,
  });
  res.end(body);
}

export function toPosternError(error: unknown): PosternError {
  return error instanceof PosternError ? error : new PosternError("internal", undefined, { cause: error });
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ""}` : String(error);
}
