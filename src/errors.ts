/**
 * The one table of Postern's stable error codes. Each code has an HTTP status and a
 * default title; a problem+json body (RFC 9457) carries the code as `code` and as the
 * last segment of `type`. Codes are API: never rename one, only add.
 */
export const ERROR_CODES = {
  "bad-request": { status: 400, title: "The request is malformed" },
  "body-too-large": { status: 413, title: "The body exceeds the route's limit" },
  "headers-too-large": { status: 431, title: "The request's header section exceeds the limit" },
  "request-timeout": { status: 408, title: "The request did not arrive in time" },
  "unsupported-media-type": { status: 415, title: "The content type is not accepted on this route" },
  "digest-missing": { status: 400, title: "Content-Digest is missing or has no supported algorithm" },
  "digest-mismatch": { status: 400, title: "Content-Digest does not match the body" },
  "signature-missing": { status: 401, title: "No message signature with the expected tag" },
  "signature-invalid": { status: 401, title: "The message signature does not verify" },
  "signature-profile": { status: 400, title: "The signature lacks a required component or parameter" },
  "key-mismatch": { status: 401, title: "The signature's keyid is not the TLS client certificate" },
  stale: { status: 401, title: "The signature is too old" },
  "from-future": { status: 401, title: "The signature was created in the future" },
  replayed: { status: 409, title: "This nonce was already used" },
  unauthenticated: { status: 401, title: "A client certificate is required" },
  forbidden: { status: 403, title: "This identity may not do this" },
  "not-found": { status: 404, title: "No such resource" },
  "method-not-allowed": { status: 405, title: "The method is not allowed on this path" },
  "backend-unavailable": { status: 503, title: "The backend is unavailable" },
  "backend-timeout": { status: 504, title: "The backend did not answer in time" },
  "storage-unavailable": { status: 503, title: "The message could not be stored; nothing was stored" },
  "stream-limit": { status: 422, title: "The backend holds its maximum number of streams; this message would start a new one" },
  "replay-store-unavailable": { status: 503, title: "The replay store is unavailable; nothing was forwarded" },
  "replay-store-timeout": {
    status: 503,
    title: "The replay store did not answer in time; the outcome is unknown: retry the same signed request, which is idempotent",
  },
  "replication-timeout": {
    status: 503,
    title: "Fewer Redis replicas than redis.waitReplicas confirmed the write in time; retry the same signed request",
  },
  "rate-limited": { status: 429, title: "Too many requests" },
  "sealed-required": { status: 415, title: "This route accepts only sealed bodies (application/jose)" },
  "sealed-invalid": { status: 400, title: "The sealed body is not a JWE of Postern's profile (compact, allowed alg, A256GCM)" },
  "sealed-key-unknown": { status: 400, title: "The sealed body names no current encryption key of this backend; fetch its keys again" },
  "sealed-binding": { status: 400, title: "The sealed body is bound to another route or sender" },
  "sealed-undecryptable": { status: 400, title: "The sealed body does not decrypt with the backend's keys" },
  "token-invalid": { status: 401, title: "The enrollment token is unknown, used or expired" },
  "csr-invalid": { status: 400, title: "The CSR is malformed or its signature does not verify" },
  "csr-forbidden-name": { status: 403, title: "The requested name is not allowed by the profile" },
  "csr-weak-key": { status: 400, title: "The key type or size is not allowed by the profile" },
  "csr-ca-request": { status: 403, title: "A client certificate can never be a CA" },
  "certificate-revoked": { status: 403, title: "The certificate is revoked" },
  "certificate-expired": { status: 403, title: "The certificate has expired" },
  "key-revoked": { status: 403, title: "This key belongs to a revoked certificate and is never certified again" },
  "pki-state-lost": { status: 503, title: "The PKI's store lost state the trust ledger recorded; refusing until it is restored" },
  "otp-required": { status: 401, title: "This admin action needs a current one-time code (Postern-OTP header) from an enrolled authenticator" },
  "otp-invalid": { status: 403, title: "The one-time code is wrong" },
  "otp-reused": { status: 403, title: "This one-time code was already used" },
  csrf: { status: 403, title: "A browser request without the console's CSRF token or from another origin" },
  conflict: { status: 409, title: "The resource already exists" },
  "client-closed": { status: 499, title: "The client closed the connection before the request was complete" },
  internal: { status: 500, title: "Internal error" },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Base URI of problem types; `type` is this plus the code. */
export const PROBLEM_TYPE_BASE = "https://postern.dev/problems/";

export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail?: string;
  instance?: string;
  [extension: string]: unknown;
}

/**
 * An error with a stable code. `detail` is shown to the client: it must never hold
 * secrets, stack traces or raw input longer than a few characters.
 */
export class PosternError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: string | undefined;
  /** Extra problem+json members, such as `retryAfterSeconds`. */
  readonly extensions: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    detail?: string,
    options: { cause?: unknown; extensions?: Record<string, unknown> } = {},
  ) {
    super(detail ?? ERROR_CODES[code].title, { cause: options.cause });
    this.name = "PosternError";
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.detail = detail;
    this.extensions = options.extensions ?? {};
  }

  toProblem(instance?: string): ProblemDetails {
    const problem: ProblemDetails = {
      type: PROBLEM_TYPE_BASE + this.code,
      title: ERROR_CODES[this.code].title,
      status: this.status,
      code: this.code,
    };
    if (this.detail !== undefined) problem.detail = this.detail;
    if (instance !== undefined) problem.instance = instance;
    return { ...this.extensions, ...problem };
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && Object.hasOwn(ERROR_CODES, value);
}
