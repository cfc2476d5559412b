import { randomUUID } from "node:crypto";
import type { Logger } from "../log.js";
import type { Peer } from "../tls/index.js";
import type { AnyRequest, AnyResponse } from "./types.js";

/** What a handler adds to a request's access log line. */
export interface AccessRecord {
  readonly requestId: string;
  route?: string;
  /** "accepted", "forwarded", or the problem code. */
  outcome?: string;
  messageId?: string;
  bytesIn?: number;
}

const records = new WeakMap<AnyRequest, AccessRecord>();

/** A client's X-Request-Id is kept only when it is short and plain; otherwise one is made. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The record of a request that `logAccess` is tracking (handlers fill in route, outcome, message id). */
export function accessRecordOf(req: AnyRequest): AccessRecord | undefined {
  return records.get(req);
}

/**
 * Starts a request's access log line: takes or makes its request id, echoes it as
 * `X-Request-Id`, and writes one line when the response closes (finished or cut off). The line
 * names who, what and how it ended; never a body, a key, a token or a signature.
 */
export function logAccess(
  req: AnyRequest,
  res: AnyResponse,
  context: { listener: string; peer: Peer | undefined; remote: string; log: Logger },
): AccessRecord {
  const offered = req.headers["x-request-id"];
  const record: AccessRecord = { requestId: typeof offered === "string" && REQUEST_ID.test(offered) ? offered : randomUUID() };
  records.set(req, record);
  res.setHeader("x-request-id", record.requestId);
  const started = performance.now();
  res.once("close", () => {
    const target = req.url ?? "";
    const queryAt = target.indexOf("?");
    (context.log.trusted ?? context.log.info).call(context.log, "request", {
      listener: context.listener,
      requestId: record.requestId,
      remote: context.remote,
      protocol: `HTTP/${req.httpVersion}`,
      method: req.method,
      path: queryAt < 0 ? target : target.slice(0, queryAt),
      ...(context.peer ? { identity: context.peer.identity.id, serial: context.peer.identity.serial } : {}),
      ...(record.route !== undefined ? { route: record.route } : {}),
      ...(record.outcome !== undefined ? { outcome: record.outcome } : {}),
      status: res.writableFinished ? res.statusCode : 499,
      ...(record.messageId !== undefined ? { messageId: record.messageId } : {}),
      ...(record.bytesIn !== undefined ? { bytesIn: record.bytesIn } : {}),
      latencyMs: Math.round((performance.now() - started) * 100) / 100,
    });
  });
  return record;
}
