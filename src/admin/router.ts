import type { IncomingHttpHeaders } from "node:http";
import { PosternError } from "../errors.js";
import { mediaType, PathRouter } from "../gateway/index.js";
import { readBody, type AnyRequest, type AnyResponse, type Peer, sendBytes, sendJson, sendProblem } from "../http/index.js";
import type { Logger } from "../log.js";
import type { AdminSecondFactor, SecondFactorAction } from "../pki/index.js";
import { checkBrowserRequest } from "./csrf.js";

/**
 * Who may call an admin endpoint: `admin` (a certificate with the admin role), `client` (any
 * valid certificate: renewal), or `anonymous` (no certificate needed: token enrollment).
 */
export type AdminAuth = "admin" | "client" | "anonymous";

export interface AdminRequest {
  peer: Peer | undefined;
  params: Readonly<Record<string, string>>;
  query: URLSearchParams;
  /** The request's header fields, as Node parsed them (names in lower case). */
  headers: Readonly<IncomingHttpHeaders>;
  /** The JSON body (an object), at most 1 MiB. */
  json(): Promise<Record<string, unknown>>;
  /** The raw body, at most `maxBytes` (`body-too-large` beyond). */
  bytes(maxBytes: number): Promise<Buffer>;
}

export type AdminReply =
  | { status: number; json: unknown }
  | { status: number; contentType: string; body: Uint8Array | string; filename?: string; headers?: Readonly<Record<string, string>> }
  | { status: 204 };

export interface AdminEndpoint {
  method: "GET" | "POST" | "DELETE";
  path: string;
  auth: AdminAuth;
  /**
   * The action a TOTP second factor guards here (config `admin.otp.actions`): checked after
   * the certificate and before the body is read, so a refused code changes nothing.
   */
  secondFactor?: SecondFactorAction;
  /** Serve a certificate that expired within the renewal grace period (renewal only). */
  allowExpired?: boolean;
  handle(request: AdminRequest): Promise<AdminReply>;
}

const MAX_ADMIN_BODY_BYTES = 1024 * 1024;

/** What guards the mutating admin calls besides the certificate. */
export interface AdminGuards {
  /** The TOTP check of endpoints that name a `secondFactor`; none: no second factor. */
  secondFactor?: AdminSecondFactor;
  /** The key of the console's CSRF tokens; browser requests that change something must carry one. */
  csrfKey?: Uint8Array;
  /** Serves `/console/` (static files) for admins; none: 404. */
  console?: (req: AnyRequest, res: AnyResponse, pathname: string) => Promise<void>;
}

/** The header carrying the one-time code. */
export const OTP_HEADER = "postern-otp";

/**
 * Routes admin requests: authentication by endpoint, then (for mutating calls) the browser's
 * CSRF check and the second factor, JSON in and out, problem+json errors.
 */
export function adminHandler(endpoints: readonly AdminEndpoint[], log: Logger, guards: AdminGuards = {}) {
  const router = new PathRouter(endpoints.map((endpoint) => ({ method: endpoint.method, path: endpoint.path, value: endpoint })), { decode: true });
  return (req: AnyRequest, res: AnyResponse, peer: Peer | undefined): void => {
    const url = new URL(req.url ?? "/", "https://admin.invalid");
    void (async () => {
      try {
        if (url.pathname === "/console" || url.pathname.startsWith("/console/")) {
          authorize("admin", peer);
          if (peer?.expired) throw new PosternError("certificate-expired", "an expired certificate may only renew");
          if (!guards.console) throw new PosternError("not-found", "the console is not served here");
          return await guards.console(req, res, url.pathname);
        }
        const { value: endpoint, params } = router.find(req.method ?? "", url.pathname);
        authorize(endpoint.auth, peer);
        if (peer?.expired && !endpoint.allowExpired) throw new PosternError("certificate-expired", "an expired certificate may only renew");
        if (endpoint.method !== "GET" && peer) checkBrowserRequest(req, peer, guards.csrfKey);
        if (endpoint.secondFactor && guards.secondFactor) {
          const code = req.headers[OTP_HEADER];
          await guards.secondFactor.verify({ identity: peer!.identity.id, code: typeof code === "string" ? code.trim() : undefined, action: endpoint.secondFactor, subject: url.pathname });
        }
        send(req, res, await endpoint.handle({ peer, params, query: url.searchParams, headers: req.headers, json: () => readJson(req), bytes: (max) => readBody(req, max) }));
      } catch (error) {
        sendProblem(res, error, log, url.pathname);
      }
    })();
  };
}

function authorize(auth: AdminAuth, peer: Peer | undefined): void {
  if (auth === "anonymous") return;
  if (!peer) throw new PosternError("unauthenticated", "this endpoint needs a client certificate");
  if (auth === "admin" && !peer.identity.roles.includes("admin")) {
    throw new PosternError("forbidden", "the admin API requires the admin role");
  }
}

async function readJson(req: AnyRequest): Promise<Record<string, unknown>> {
  if (mediaType(req.headers["content-type"]) !== "application/json") throw new PosternError("unsupported-media-type", "send application/json");
  const body = await readBody(req, MAX_ADMIN_BODY_BYTES);
  let value: unknown;
  try {
    value = JSON.parse(body.toString("utf8"));
  } catch {
    throw new PosternError("bad-request", "the body is not JSON");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new PosternError("bad-request", "the body must be a JSON object");
  return value as Record<string, unknown>;
}

function send(req: AnyRequest, res: AnyResponse, reply: AdminReply): void {
  if ("json" in reply) return sendJson(res, reply.status, reply.json);
  if (!("body" in reply)) {
    res.writeHead(204, { "cache-control": "no-store" });
    res.end();
    return;
  }
  sendBytes(req, res, reply.status, reply.contentType, reply.body, {
    "cache-control": "no-store",
    ...reply.headers,
    ...(reply.filename ? { "content-disposition": `attachment; filename="${reply.filename}"` } : {}),
  });
}

/** Reads a required string member of a JSON body. */
export function requireString(body: Record<string, unknown>, key: string, pattern?: RegExp): string {
  const value = body[key];
  if (typeof value !== "string" || value === "") throw new PosternError("bad-request", `${key} must be a non-empty string`);
  if (pattern && !pattern.test(value)) throw new PosternError("bad-request", `${key} has an invalid format`);
  return value;
}

/** Reads an optional string array member. */
export function optionalStrings(body: Record<string, unknown>, key: string): string[] | undefined {
  const value = body[key];
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) throw new PosternError("bad-request", `${key} must be an array of strings`);
  return value as string[];
}
