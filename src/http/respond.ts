import type { ServerResponse } from "node:http";
import type { Http2ServerResponse } from "node:http2";
import type { Socket } from "node:net";
import { PosternError } from "../errors.js";
import type { Logger } from "../log.js";

/**
 * The one place errors become responses: `application/problem+json` (RFC 9457) with a stable
 * `code`. Anything that is not a PosternError is logged and answered as `internal`, never
 * with its message or stack.
 */
export function sendProblem(res: ServerResponse | Http2ServerResponse, error: unknown, log: Logger, instance?: string): PosternError {
  const problem = toPosternError(error);
  if (problem.code === "internal") {
    log.error("internal error", { error: describe(error), instance });
  } else if (problem.code === "client-closed") {
    log.info("client closed the connection mid-request", { instance });
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
  const allow = problem.extensions.allow;
  if (Array.isArray(allow)) headers.allow = allow.join(", ");
  // RFC 9110 §11.6.1: a 401 names the schemes the client may answer with (EST clients wait for it).
  const challenge = problem.extensions.wwwAuthenticate;
  if (problem.status === 401 && typeof challenge === "string") headers["www-authenticate"] = challenge;
  res.writeHead(problem.status, headers);
  res.end(body);
  return problem;
}

/**
 * Answers on a bare socket, for errors Node's HTTP parser raises before there is a response
 * object (malformed or oversized header sections, request timeouts), then closes it for good.
 */
export function writeRawProblem(socket: Socket, error: PosternError): void {
  const problem = error.toProblem();
  const body = JSON.stringify(problem);
  // Keep reading (and dropping) what the client still sends, or a client blocked writing a
  // huge header section would never read this answer.
  socket.resume();
  setTimeout(() => socket.destroy(), 2000).unref();
  socket.end(
    `HTTP/1.1 ${problem.status} ${problem.title}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\nDate: ${new Date().toUTCString()}\r\n\r\n${body}`,
  );
}

/**
 * Answers with bytes (or text) of a given type; a HEAD request gets the same headers and no
 * body. `headers` adds caching and the like (default `cache-control: no-store`).
 */
export function sendBytes(
  req: { method?: string | undefined },
  res: ServerResponse | Http2ServerResponse,
  status: number,
  contentType: string,
  body: Uint8Array | string,
  headers: Record<string, string> = { "cache-control": "no-store" },
): void {
  res.writeHead(status, {
    "content-type": contentType,
    "content-length": typeof body === "string" ? Buffer.byteLength(body) : body.byteLength,
    ...headers,
  });
  if (req.method === "HEAD") res.end();
  else res.end(body);
}

export function sendJson(res: ServerResponse | Http2ServerResponse, status: number, value: unknown, extraHeaders: Record<string, string> = {}): void {
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
