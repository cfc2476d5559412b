import { adminHandler, consoleEndpoints, consoleFiles, explainEndpoint, pkiEndpoints } from "../admin/index.js";
import { stateLocations, type PosternConfig } from "../config/index.js";
import { PosternError } from "../errors.js";
import type { Gateway } from "../gateway/index.js";
import { dataPlaneHandler, MtlsServer, type OptionalPeerHandler, publicEndpoints, PublicServer, refuseWhile, type Readiness } from "../http/index.js";
import type { Logger } from "../log.js";
import type { PrometheusRecorder } from "../metrics/index.js";
import type { PkiRuntime } from "../pki/index.js";
import type { RateLimiter } from "../ratelimit/index.js";
import { caChainVerifier, trustedSources } from "../tls/index.js";

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
}

/** The three listeners: data plane (mTLS), admin plane (mTLS, anonymous enrollment), public. */
export interface Listeners {
  start(): Promise<ListeningAddresses>;
  /** Drains the mTLS listeners for up to `drainMs`, then closes all three. */
  close(drainMs: number): Promise<void>;
}

/**
 * Builds the listeners from the configuration: the data plane answers 503 pki-state-lost while
 * the PKI's trust state is lost, and a revocation closes that certificate's live connections on
 * both mTLS listeners at once.
 */
export function buildListeners(deps: ListenerDeps): Listeners {
  const { gateway, pki, metrics, log, now } = deps;
  const config = deps.config();
  const material = pki.material;
  const chainsToCa = caChainVerifier(material.caBundlePem);
  const mtls = (name: string, handler: OptionalPeerHandler, anonymous: boolean, extras: object = {}) =>
    new MtlsServer({
      name,
      secureContext: () => ({ key: material.serverKeyPem, cert: material.serverCertChainPem, ca: material.caBundlePem }),
      minVersion: config.tls.minVersion,
      handshakeTimeoutSeconds: config.tls.handshakeTimeoutSeconds,
      ...config.limits,
      connections: config.limits,
      revocations: pki.revocations,
      chainsToCa,
      ...(config.tls.handshakesPerSecondPerAddress > 0
        ? { handshakeLimit: { ratePerSecond: config.tls.handshakesPerSecondPerAddress, burst: config.tls.handshakeBurstPerAddress } }
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
  const stateLost = new PosternError("pki-state-lost", "the gateway's PKI state was lost; an operator must restore it", { extensions: { retryAfterSeconds: 30 } });
  const dataHandler = refuseWhile(dataPlaneHandler({ gateway, metrics, log }), () => (pki.trust.lost ? stateLost : undefined), { metrics, log });
  const listener = config.listeners.data;
  const data = mtls("data", dataHandler as OptionalPeerHandler, false, {
    ...(listener.http2 ? { http2: listener } : {}),
    ...(listener.proxyProtocol ? { proxyProtocol: { isTrusted: trustedSources(listener.proxyProtocol.trustedSources) } } : {}),
  });
  const explain = explainEndpoint({
    routes: () => gateway.routeTable,
    caBundlePem: material.caBundlePem,
    isRevoked: (serial) => pki.revocationStatus(serial),
    rateLimiter: deps.rateLimiter,
    now,
  });
  const servers = () => [data, admin];
  const consoleApi = consoleEndpoints({
    authority: pki.authority,
    secondFactor: pki.secondFactor,
    csrfKey: pki.csrfKey,
    caBundlePem: material.caBundlePem,
    connections: () => servers().flatMap((server) => server.liveConnections()),
    closeConnection: (name, id) => (name === "data" ? data : name === "admin" ? admin : undefined)?.closeConnection(id) ?? false,
    audit: pki.audit,
    auditPath: stateLocations(config).auditLogPath,
    traffic: () => metrics.traffic.lastHour(),
  });
  let files: ReturnType<typeof consoleFiles> | undefined;
  const admin: MtlsServer = mtls("admin", adminHandler([...pkiEndpoints(pki.authority), explain, ...consoleApi], log, {
    secondFactor: pki.secondFactor,
    csrfKey: pki.csrfKey,
    console: async (req, res, pathname) => (await (files ??= consoleFiles()))(req, res, pathname),
  }), true);
  pki.onRevoked((entry) => {
    const closed = data.closeConnectionsOf(entry.serial) + admin.closeConnectionsOf(entry.serial);
    metrics.revocationPropagated((now() - entry.revokedAtMs) / 1000);
    if (closed > 0) log.info("closed the live connections of a revoked certificate", { serial: entry.serial, closed });
  });
  const publicServer = new PublicServer(
    publicEndpoints({ metrics, readiness: deps.readiness, caBundlePem: material.caBundlePem, jwks: () => pki.signingKeys.jwks(), crl: pki.crl, authority: pki.authority }),
    log,
  );
  return {
    async start() {
      const l = config.listeners;
      const [d, a, p] = await Promise.all([data.listen(l.data.host, l.data.port), admin.listen(l.admin.host, l.admin.port), publicServer.listen(l.public.host, l.public.port)]);
      return { data: { host: l.data.host, port: d.port }, admin: { host: l.admin.host, port: a.port }, public: { host: l.public.host, port: p.port } };
    },
    async close(drainMs) {
      await Promise.all([data.close(drainMs), admin.close(drainMs)]);
      await publicServer.close();
    },
  };
}
