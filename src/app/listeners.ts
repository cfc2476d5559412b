import { adminHandler, consoleEndpoints, consoleFiles, explainEndpoint, pkiEndpoints, serverRenewalEndpoint } from "../admin/index.js";
import { stateLocations, type PosternConfig } from "../config/index.js";
import { PosternError } from "../errors.js";
import { estEndpoints } from "../est/index.js";
import type { Gateway } from "../gateway/index.js";
import { dataPlaneHandler, MtlsServer, type OptionalPeerHandler, publicEndpoints, PublicServer, refuseWhile, type Readiness } from "../http/index.js";
import type { Logger } from "../log.js";
import type { MetricsRecorder, PrometheusRecorder } from "../metrics/index.js";
import type { PkiMaterial, PkiRuntime, RevocationIndex } from "../pki/index.js";
import type { RateLimiter } from "../ratelimit/index.js";
import { caChainVerifier, type TlsReloader, trustedSources } from "../tls/index.js";

export interface ListeningAddresses {
  data: { host: string; port: number };
  admin: { host: string; port: number };
  public: { host: string; port: number };
}

export interface ListenerDeps {
  config: () => Readonly<PosternConfig>;
  gateway: Gateway;
  pki: PkiRuntime;
  rateLimiter: RateLimiter;
  metrics: PrometheusRecorder;
  log: Logger;
  now: () => number;
  readiness: () => Readiness;
  /** The server certificate, key and CA bundle of the moment (reloaded without a restart). */
  tls: TlsReloader;
  /** False when cluster workers serve the data listener (`workers` > 1): only admin and public here. */
  dataPlane: boolean;
  /** A sealing backend's current public encryption keys; undefined for any other name. */
  backendJwks: (backend: string) => unknown;
}

/** The three listeners: data plane (mTLS), admin plane (mTLS, anonymous enrollment), public. */
export interface Listeners {
  /** Listens; `data` is undefined when the workers serve the data listener. */
  start(): Promise<Omit<ListeningAddresses, "data"> & { data: ListeningAddresses["data"] | undefined }>;
  /** Drains the mTLS listeners for up to `drainMs`, then closes all three. */
  close(drainMs: number): Promise<void>;
}

/** The certificate, key and CA bundle a listener serves. */
export type ServingMaterial = Pick<PkiMaterial, "serverKeyPem" | "serverCertChainPem" | "caBundlePem">;

/**
 * What an mTLS listener needs of the PKI: the material of the moment (the PKI's in one
 * process, the primary's as a worker received it) and the handshake's revocation index.
 */
export interface ServedPki {
  current(): ServingMaterial;
  revocations: RevocationIndex;
}

export interface MtlsListenerDeps {
  config: Readonly<PosternConfig>;
  pki: ServedPki;
  metrics: MetricsRecorder;
  log: Logger;
  now: () => number;
  /** A worker's share of the per-address handshake limit: the limit divided by the worker count. */
  handshakeShare?: number;
}

/** An mTLS listener with the configured TLS options, limits and admission (data or admin). */
export function mtlsListener(deps: MtlsListenerDeps, name: string, handler: OptionalPeerHandler, anonymous: boolean, extras: object = {}): MtlsServer {
  const { config, pki, metrics, log, now } = deps;
  const share = deps.handshakeShare ?? 1;
  // Built again only when the material brings another CA bundle.
  let trusted = { bundle: pki.current().caBundlePem, chainsToCa: caChainVerifier(pki.current().caBundlePem) };
  const chainsToCa = (der: Buffer) => {
    const bundle = pki.current().caBundlePem;
    if (bundle !== trusted.bundle) trusted = { bundle, chainsToCa: caChainVerifier(bundle) };
    return trusted.chainsToCa(der);
  };
  return new MtlsServer({
    name,
    secureContext: () => {
      const material = pki.current();
      return { key: material.serverKeyPem, cert: material.serverCertChainPem, ca: material.caBundlePem };
    },
    minVersion: config.tls.minVersion,
    handshakeTimeoutSeconds: config.tls.handshakeTimeoutSeconds,
    ...config.limits,
    connections: config.limits,
    revocations: pki.revocations,
    chainsToCa,
    ...(config.tls.handshakesPerSecondPerAddress > 0
      ? { handshakeLimit: { ratePerSecond: config.tls.handshakesPerSecondPerAddress / share, burst: Math.max(1, Math.ceil(config.tls.handshakeBurstPerAddress / share)) } }
      : {}),
    anonymous,
    ...(anonymous ? { expiredGraceSeconds: config.pki.renewalGraceSeconds } : {}),
    metrics,
    log,
    now,
    accessLog: config.log.access,
    ...extras,
    handler,
  });
}

/**
 * The data listener: the pipeline behind mTLS, answering 503 pki-state-lost while `stateLost()`
 * says the PKI's trust state is lost. The same in a single process and in each cluster worker.
 */
export function dataListener(deps: MtlsListenerDeps & { gateway: Gateway; stateLost: () => boolean }): MtlsServer {
  const { gateway, metrics, log, config } = deps;
  const stateLost = new PosternError("pki-state-lost", "the gateway's PKI state was lost; an operator must restore it", { extensions: { retryAfterSeconds: 30 } });
  const handler = refuseWhile(dataPlaneHandler({ gateway, metrics, log }), () => (deps.stateLost() ? stateLost : undefined), { metrics, log });
  const listener = config.listeners.data;
  return mtlsListener(deps, "data", handler as OptionalPeerHandler, false, {
    ...(listener.http2 ? { http2: listener } : {}),
    ...(listener.proxyProtocol ? { proxyProtocol: { isTrusted: trustedSources(listener.proxyProtocol.trustedSources) } } : {}),
  });
}

/**
 * Builds the listeners from the configuration: the data plane answers 503 pki-state-lost while
 * the PKI's trust state is lost, and a revocation closes that certificate's live connections on
 * both mTLS listeners at once.
 */
export function buildListeners(deps: ListenerDeps): Listeners {
  const { gateway, pki, metrics, log, now } = deps;
  const config = deps.config();
  const { tls } = deps;
  const served = { config, pki: { current: () => tls.current(), revocations: pki.revocations }, metrics, log, now };
  const data = deps.dataPlane ? dataListener({ ...served, gateway, stateLost: () => pki.trust.lost }) : undefined;
  const explain = explainEndpoint({
    routes: () => gateway.routeTable,
    get caBundlePem() {
      return tls.current().caBundlePem;
    },
    isRevoked: (serial) => pki.revocationStatus(serial),
    rateLimiter: deps.rateLimiter,
    now,
  });
  const servers = () => (data ? [data, admin] : [admin]);
  const consoleApi = consoleEndpoints({
    authority: pki.authority,
    secondFactor: pki.secondFactor,
    csrfKey: pki.csrfKey,
    get caBundlePem() {
      return tls.current().caBundlePem;
    },
    connections: () => servers().flatMap((server) => server.liveConnections()),
    closeConnection: (name, id) => (name === "data" ? data : name === "admin" ? admin : undefined)?.closeConnection(id) ?? false,
    audit: pki.audit,
    auditPath: stateLocations(config).auditLogPath,
    traffic: () => metrics.traffic.lastHour(),
  });
  let files: ReturnType<typeof consoleFiles> | undefined;
  const renewal = serverRenewalEndpoint({ renew: (input) => pki.renewServerCertificate(input), reload: () => tls.reload("renewal") });
  const admin: MtlsServer = mtlsListener(served, "admin", adminHandler([...pkiEndpoints(pki.authority), explain, renewal, ...estEndpoints({ ca: pki.authority, metrics }), ...consoleApi], log, {
    secondFactor: pki.secondFactor,
    csrfKey: pki.csrfKey,
    console: async (req, res, pathname) => (await (files ??= consoleFiles()))(req, res, pathname),
  }), true);
  tls.onApplied(() => {
    data?.reloadSecureContext();
    admin.reloadSecureContext();
  });
  pki.onRevoked((entry) => {
    const closed = (data?.closeConnectionsOf(entry.serial) ?? 0) + admin.closeConnectionsOf(entry.serial);
    metrics.revocationPropagated((now() - entry.revokedAtMs) / 1000);
    if (closed > 0) log.info("closed the live connections of a revoked certificate", { serial: entry.serial, closed });
  });
  const publicServer = new PublicServer(
    publicEndpoints({ metrics, readiness: deps.readiness, get caBundlePem() { return tls.current().caBundlePem; }, jwks: () => pki.signingKeys.jwks(), backendJwks: deps.backendJwks, crl: pki.crl, authority: pki.authority }),
    log,
  );
  return {
    async start() {
      const l = config.listeners;
      const [d, a, p] = await Promise.all([data?.listen(l.data.host, l.data.port), admin.listen(l.admin.host, l.admin.port), publicServer.listen(l.public.host, l.public.port)]);
      return { data: d ? { host: l.data.host, port: d.port } : undefined, admin: { host: l.admin.host, port: a.port }, public: { host: l.public.host, port: p.port } };
    },
    async close(drainMs) {
      await Promise.all([data?.close(drainMs), admin.close(drainMs)]);
      await publicServer.close();
    },
  };
}
