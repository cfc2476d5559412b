import { randomUUID } from "node:crypto";
import type { PosternConfig, RouteConfig } from "../config/index.js";
import { PosternError } from "../errors.js";
import type { AcceptedMessage, Backend, Delivery } from "../forward/index.js";
import type { MetricsRecorder } from "../metrics/index.js";
import type { ClientIdentity } from "../pki/index.js";
import { bucketKey, limitFor, type RateLimiter } from "../ratelimit/index.js";
import { isValidNonce, requestFingerprint } from "../replay/index.js";
import {
  PROFILE_COMPONENTS,
  PROFILE_PARAMETERS,
  verifyContentDigest,
  verifyMessage,
  type HttpMessageParts,
  type PublicKeyCache,
} from "../signing/index.js";
import { checkSealedHeader, currentKeyInfo, SEALED_MEDIA_TYPE, sealedRoute, type SealAlgorithm, type SealingKeySet } from "../sealed/index.js";
import { isAuthorized } from "./authorize.js";
import { mediaType } from "./media-type.js";
import type { RouteTable } from "./routes.js";

/** A data-plane request as the gateway sees it: plain values and a body reader. */
export interface InboundRequest {
  identity: ClientIdentity;
  peerCertDer: Uint8Array;
  message: HttpMessageParts;
  /** Reads the whole body; rejects with `body-too-large` past `maxBodyBytes`. */
  readBody(maxBodyBytes: number): Promise<Buffer>;
  /** Told the route's name once the request matched one (the metrics label). */
  onRoute?: (name: string) => void;
}

/** What the client gets: a JSON body of the gateway's own, or an upstream's answer as it was. */
export type GatewayAnswer =
  | { kind: "json"; status: number; body: Record<string, unknown> }
  | { kind: "upstream"; status: number; headers: Record<string, string>; body: Buffer };

/** A backend's sealing: its public encryption keys (from `sealing.publicKeys`) and the algorithms it allows. */
export interface BackendSealing {
  keys: SealingKeySet;
  algorithms: readonly SealAlgorithm[];
}

export interface GatewayDeps {
  routes: RouteTable;
  backends: ReadonlyMap<string, Backend>;
  /** By backend name: only backends with `sealing` configured (none when absent). */
  sealing?: ReadonlyMap<string, BackendSealing>;
  signature: PosternConfig["signature"];
  keys: PublicKeyCache;
  rateLimiter: RateLimiter;
  metrics: MetricsRecorder;
  now: () => number;
}

/**
 * The data-plane pipeline, cheapest checks first: route, authorization, rate limit, content type, body
 * size, Content-Digest, signature and freshness, then nonce claim and hand-over as one step.
 * Nothing reaches a backend or the replay store before the signature is proven.
 * @throws PosternError with the code of the first check that fails.
 */
export class Gateway {
  private deps: GatewayDeps;

  constructor(deps: GatewayDeps) {
    this.deps = { ...deps };
  }

  /** Swaps routes, backends and signature policy (config reload); requests in flight keep the old ones. */
  configure(next: Pick<GatewayDeps, "routes" | "backends" | "signature"> & Partial<Pick<GatewayDeps, "sealing">>): void {
    this.deps = { ...this.deps, ...next };
  }

  get routeTable(): RouteTable {
    return this.deps.routes;
  }

  async handle(request: InboundRequest): Promise<GatewayAnswer> {
    const deps = this.deps;
    const { message, identity } = request;
    const { route, params } = deps.routes.find(message.method, message.path);
    request.onRoute?.(route.name);
    if (!isAuthorized(identity, route.allow)) {
      throw new PosternError("forbidden", `${identity.id} may not use route ${route.name}`);
    }
    if (route.rateLimit) await this.limit(route, route.rateLimit, identity);
    const contentType = singleHeader(message, "content-type");
    const type = mediaType(contentType);
    // On a sealed route application/jose means a sealed body, checked as one; elsewhere it is only a content type.
    const sealed = route.sealed !== "forbidden" && type === SEALED_MEDIA_TYPE;
    if (route.sealed === "required" && !sealed) {
      throw new PosternError("sealed-required", `route ${route.name} accepts only ${SEALED_MEDIA_TYPE} bodies`);
    }
    if (contentType === undefined || (!sealed && !route.contentTypes.includes(type))) {
      throw new PosternError("unsupported-media-type", `accepted: ${route.contentTypes.join(", ")}`);
    }
    const body = await request.readBody(route.maxBodyBytes);
    const { nonce, claimExpiresAtMs, contentDigest } = this.verify(request, route, body, sealed);

    const backend = deps.backends.get(route.backend);
    if (!backend) throw new PosternError("internal", "route has no backend");
    const accepted: AcceptedMessage = {
      messageId: randomUUID(),
      route: route.name,
      params,
      identity,
      clientCertDer: request.peerCertDer,
      method: message.method,
      authority: message.authority,
      path: message.path,
      query: message.query,
      contentType,
      contentDigest,
      body,
      receivedAtMs: deps.now(),
    };
    const started = performance.now();
    const delivery = await backend.deliver(accepted, {
      backend: backend.name,
      client: identity.fingerprint,
      nonce,
      digest: requestFingerprint({ ...message, contentDigest }),
      expiresAtMs: claimExpiresAtMs,
    });
    // Stream backends claim and enqueue in one step; HTTP backends claim, then forward.
    deps.metrics.observeSeconds(backend.kind === "http" ? "forward" : "replay_claim", (performance.now() - started) / 1000);
    return answerFor(delivery, route.name);
  }

  /** The identity's rate limit on the route (a route without one costs no await). */
  private async limit(route: RouteConfig, rateLimit: NonNullable<RouteConfig["rateLimit"]>, identity: ClientIdentity): Promise<void> {
    const taken = await this.deps.rateLimiter.take(bucketKey(route.name, identity), limitFor(identity, rateLimit));
    if (!taken.allowed) {
      throw new PosternError("rate-limited", `route ${route.name} allows ${rateLimit.requestsPerSecond}/s per identity`, {
        extensions: { retryAfterSeconds: Math.max(1, Math.ceil(taken.retryAfterMs / 1000)) },
      });
    }
  }

  /** Content-Digest, then the signature (keyid bound to the TLS peer) and its freshness, then the nonce's form. */
  private verify(request: InboundRequest, route: RouteConfig, body: Buffer, sealed: boolean): { nonce: string; claimExpiresAtMs: number; contentDigest: string } {
    const { deps } = this;
    const { message, identity } = request;
    const policy = { ...deps.signature, ...route.signature };
    const started = performance.now();
    const digestLines = headerLines(message, "content-digest");
    const digest = verifyContentDigest(digestLines, body);
    if (!digest.ok) throw new PosternError(digest.code, digest.detail);
    if (sealed) this.checkSealed(request, route, body);
    const verified = verifyMessage(message, {
      resolveKey: (keyid) =>
        keyid === identity.fingerprint ? { key: deps.keys.get(request.peerCertDer, identity.fingerprint) } : undefined,
      now: deps.now,
      maxAgeSeconds: policy.maxAgeSeconds,
      clockSkewSeconds: policy.clockSkewSeconds,
      tag: deps.signature.tag,
      requiredComponents: requiredComponents(route),
      requiredParameters: PROFILE_PARAMETERS,
    });
    deps.metrics.observeSeconds("verify", (performance.now() - started) / 1000);
    if (!verified.ok) throw new PosternError(verified.code, verified.detail);
    const { nonce, created = 0 } = verified.params;
    if (nonce === undefined || !isValidNonce(nonce)) {
      throw new PosternError("signature-profile", "nonce must be 16-128 characters of [A-Za-z0-9._~-]");
    }
    // A claim outlives the window in which the signature could pass the freshness check.
    const claimExpiresAtMs = (created + policy.maxAgeSeconds + policy.clockSkewSeconds + 1) * 1000;
    return { nonce, claimExpiresAtMs, contentDigest: digestLines.join(", ") };
  }

  /**
   * A sealed body's header, never its content: a current kid of the route's backend, an allowed
   * algorithm, and the binding to this request's method, path and TLS client certificate (a
   * sealed body cannot be moved to another route or sent by another client). Parsing costs a few
   * microseconds, less than the signature it precedes.
   */
  private checkSealed(request: InboundRequest, route: RouteConfig, body: Buffer): void {
    const sealing = this.deps.sealing?.get(route.backend);
    if (!sealing) throw new PosternError("internal", `backend ${route.backend} has no sealing keys`);
    const checked = checkSealedHeader(body, {
      keys: currentKeyInfo(sealing.keys, this.deps.now()),
      algorithms: sealing.algorithms,
      binding: { route: sealedRoute(request.message.method, request.message.path), sender: request.identity.fingerprint },
    });
    if (!checked.ok) throw new PosternError(checked.code, checked.detail);
  }
}

/** One array per route: `verifyMessage` parses a components array once, keyed by the array. */
const routeComponents = new WeakMap<RouteConfig, readonly string[]>();

function requiredComponents(route: RouteConfig): readonly string[] {
  if (!route.signature) return PROFILE_COMPONENTS;
  let components = routeComponents.get(route);
  if (components === undefined) {
    components = [...PROFILE_COMPONENTS, ...route.signature.additionalComponents];
    routeComponents.set(route, components);
  }
  return components;
}

function answerFor(delivery: Delivery, route: string): GatewayAnswer {
  if (delivery.kind === "replayed") throw new PosternError("replayed", "this nonce was already used with other content");
  if (delivery.kind === "duplicate") {
    // An exact re-send is refused like any replay, but it names the message it duplicates,
    // so a client retrying after a lost answer learns its message was accepted.
    throw new PosternError("replayed", "this request was already accepted", { extensions: { messageId: delivery.messageId } });
  }
  if (delivery.kind === "response") return { kind: "upstream", status: delivery.status, headers: delivery.headers, body: delivery.body };
  return { kind: "json", status: 202, body: { id: delivery.messageId, route } };
}

function headerLines(message: HttpMessageParts, name: string): string[] {
  const lines: string[] = [];
  for (const [key, value] of message.headers) if (key.toLowerCase() === name) lines.push(value);
  return lines;
}

function singleHeader(message: HttpMessageParts, name: string): string | undefined {
  const lines = headerLines(message, name);
  if (lines.length > 1) throw new PosternError("bad-request", `more than one ${name} header`);
  return lines[0]?.trim();
}
