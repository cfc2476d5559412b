import { setTimeout as sleep } from "node:timers/promises";
import type { Dispatcher, Pool } from "undici";
import type { BackendConfig } from "../config/index.js";
import { PosternError } from "../errors.js";
import type { MetricsRecorder } from "../metrics/index.js";
import type { NonceGuard, NonceClaim } from "../replay/index.js";
import type { AcceptedMessage, Backend, Delivery } from "./backend.js";
import { CircuitBreaker, type BreakerPermit } from "./circuit-breaker.js";
import { undici, upstreamConnector, type UpstreamConnector } from "./http-connector.js";
import { filterResponseHeaders } from "./http-headers.js";
import { buildUpstreamRequest, type UpstreamRequest } from "./http-request.js";
import type { ForwardSigner } from "./stream-entry.js";

export type HttpBackendConfig = Extract<BackendConfig, { type: "http" }>;

export interface HttpBackendOptions {
  name: string;
  config: HttpBackendConfig;
  /** Claims nonces before forwarding (the Redis guard, or the memory guard in embedded mode). */
  guard: NonceGuard;
  signer: ForwardSigner;
  metrics: MetricsRecorder;
  /** The upstream's trust anchors: `tls.caFile`'s contents, else Postern's CA bundle. */
  caBundlePem: string;
  /** The gateway's certificate chain and key, presented when `tls.clientCertificate` is true. */
  clientCertificate?: { certPem: string; keyPem: string };
  now?: () => number;
}

/** Largest upstream response body read into memory. */
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
const RETRY_DELAY_MS = 50;
const UNAVAILABLE_RETRY_SECONDS = 1;

interface UpstreamAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * An HTTP service as a backend: each accepted message is sent to `url` (base path kept) over a
 * keep-alive undici Pool, with the client certificate (RFC 9440 `Client-Cert`), the configured
 * identity headers and the gateway's own RFC 9421 signature (`tag="postern-forward"`, label
 * `postern`, `nonce` = message id, `expires` = created + 60). The request is built from scratch:
 * no client header is copied, so a client cannot set identity headers or its own signature
 * fields upstream (RFC 9421 §7.3.7). The upstream's status and body come back as they are.
 *
 * Order: the breaker is asked first (an open breaker refuses before the nonce is spent), then
 * the nonce is claimed, then the message is sent. Once claimed, a nonce stays claimed even
 * when forwarding fails (503/504): the upstream may have acted on the request, so the client
 * must sign again with a new nonce (an exact re-send is answered as a duplicate, 409 naming
 * the message id, whether or not the upstream got it). Retries happen only for connection
 * failures before any request byte was written, never after.
 *
 * Security defaults: upstream TLS always verifies the chain and host name against `tls.caFile`
 * or Postern's CA bundle; pins, when configured, must match; upstream 5xx and failures count
 * against the circuit breaker.
 */
export class HttpBackend implements Backend {
  readonly kind = "http";
  readonly name: string;
  private readonly base: URL;
  private readonly pool: Pool;
  private readonly connector: UpstreamConnector;
  private readonly breaker: CircuitBreaker;
  private readonly now: () => number;

  constructor(private readonly options: HttpBackendOptions) {
    const { name, config } = options;
    this.name = name;
    this.now = options.now ?? Date.now;
    // The configuration was checked when it was loaded (config/checks.ts).
    this.base = new URL(config.url);
    this.connector = upstreamConnector({
      caPem: options.caBundlePem,
      clientCertificate: config.tls.clientCertificate ? options.clientCertificate : undefined,
      pinSha256: config.tls.pinSha256,
      timeoutMs: config.connectTimeoutSeconds * 1000,
    });
    this.pool = new (undici().Pool)(this.base.origin, {
      connections: config.maxConnections,
      headersTimeout: config.headersTimeoutSeconds * 1000,
      bodyTimeout: config.bodyTimeoutSeconds * 1000,
      maxResponseSize: MAX_RESPONSE_BYTES,
      connect: this.connector.connect,
    });
    this.breaker = new CircuitBreaker({
      failureThreshold: config.breaker.failureThreshold,
      openSeconds: config.breaker.openSeconds,
      now: this.now,
      onStateChange: (state) => options.metrics.breakerState(name, state),
    });
    options.metrics.breakerState(name, "closed");
  }

  /**
   * Claims the nonce, then forwards. Throws `backend-unavailable` (503, `retryAfterSeconds`)
   * when the breaker is open or the upstream cannot be reached, `backend-timeout` (504) when
   * it does not answer in time. An upstream 5xx is returned as the upstream's answer.
   */
  async deliver(message: AcceptedMessage, claim: NonceClaim): Promise<Delivery> {
    const decision = this.breaker.tryAcquire();
    if (!decision.allowed) {
      this.options.metrics.backendRequest(this.name, "rejected", 0);
      throw unavailable("the backend's circuit breaker is open", decision.retryAfterSeconds);
    }
    const { permit } = decision;
    let claimed;
    try {
      claimed = await this.options.guard.claim(claim, message.messageId);
    } catch (error) {
      permit.release();
      throw error;
    }
    if (claimed.outcome !== "claimed") {
      permit.release();
      // The upstream's first answer is not kept, so a re-send cannot be answered as the
      // original was: it is a replay, and the client must not read it as delivered.
      return { kind: "replayed" };
    }
    return this.forward(message, permit, claim);
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  private async forward(message: AcceptedMessage, permit: BreakerPermit, claim: NonceClaim): Promise<Delivery> {
    let request: UpstreamRequest;
    try {
      // Signed once: a retry sends the same bytes.
      request = buildUpstreamRequest(message, {
        base: this.base,
        identityHeaders: this.options.config.identityHeaders,
        signer: this.options.signer,
        nowMs: this.now(),
      });
    } catch (error) {
      permit.release();
      await this.options.guard.release(claim, message.messageId);
      throw error;
    }
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    let answer: UpstreamAnswer;
    try {
      answer = await this.sendWithRetries(request);
    } catch (error) {
      // Nothing reached the upstream: give the nonce back so the same signed request may be retried.
      if (this.isRetryable(error)) await this.options.guard.release(claim, message.messageId);
      const failure = this.classify(error);
      // A request undici refused to send says nothing about the upstream's health.
      if (failure.code === "internal") permit.release();
      else permit.fail();
      this.options.metrics.backendRequest(this.name, failure.code === "backend-timeout" ? "timeout" : "error", seconds());
      if (failure.code !== "backend-unavailable") throw failure;
      const retryAfter = this.breaker.state === "open" ? this.breaker.retryAfterSeconds() : UNAVAILABLE_RETRY_SECONDS;
      throw unavailable(failure.detail, retryAfter, error);
    }
    if (answer.status >= 500) permit.fail();
    else permit.succeed();
    this.options.metrics.backendRequest(this.name, answer.status >= 500 ? "error" : "ok", seconds());
    return { kind: "response", messageId: message.messageId, ...answer };
  }

  private async sendWithRetries(request: UpstreamRequest): Promise<UpstreamAnswer> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.sendOnce(request);
      } catch (error) {
        if (attempt >= this.options.config.retries || !this.isRetryable(error)) throw error;
        await sleep(RETRY_DELAY_MS * (attempt + 1));
      }
    }
  }

  private async sendOnce(request: UpstreamRequest): Promise<UpstreamAnswer> {
    const response = await this.pool.request({
      method: request.method as Dispatcher.HttpMethod,
      path: request.path,
      headers: request.headers,
      body: request.body ?? null,
    });
    const body = Buffer.from(await response.body.arrayBuffer());
    return { status: response.statusCode, headers: filterResponseHeaders(response.headers), body };
  }

  /** Only failures to connect, where nothing was sent; never a certificate or pin refusal. */
  private isRetryable(error: unknown): boolean {
    return this.connector.isConnectFailure(error) && TRANSIENT_CONNECT_CODES.has(errorCode(error) ?? "");
  }

  private classify(error: unknown): PosternError {
    const code = errorCode(error);
    if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") {
      return new PosternError("backend-timeout", "the backend did not answer in time", { cause: error });
    }
    if (code === "UND_ERR_INVALID_ARG") return new PosternError("internal", undefined, { cause: error });
    if (code === "UND_ERR_RES_EXCEEDED_MAX_SIZE") return new PosternError("backend-unavailable", "the backend's answer is too large");
    const reached = !this.connector.isConnectFailure(error);
    return new PosternError("backend-unavailable", reached ? "the connection to the backend failed" : "the backend cannot be reached");
  }
}

const TRANSIENT_CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "EPIPE",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_SOCKET",
]);

function errorCode(error: unknown): string | undefined {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === "string" ? code : undefined;
}

function unavailable(detail: string | undefined, retryAfterSeconds: number, cause?: unknown): PosternError {
  return new PosternError("backend-unavailable", detail, {
    cause,
    extensions: { retryAfterSeconds: Math.max(1, Math.ceil(retryAfterSeconds)) },
  });
}
