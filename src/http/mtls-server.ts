import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { SecureContextOptions, TLSSocket } from "node:tls";
import { PosternError } from "../errors.js";
import type { Logger } from "../log.js";
import type { MetricsRecorder } from "../metrics/recorder.js";
import { identityFromCertificate } from "../pki/identity.js";
import { canonicalSerial } from "../pki/serial.js";
import { admitPeer, peerExpiresAtMs, type HandshakeFacts, type Peer } from "../tls/admission.js";
import { ConnectionCaps } from "../tls/connection-caps.js";
import { clientErrorReason } from "../tls/handshake.js";
import { SERVER_TLS_OPTIONS } from "../tls/server-options.js";
import type { RevocationIndex } from "../tls/revocation-index.js";
import { MemoryRateLimiter, type BucketLimit } from "../ratelimit/token-bucket.js";
import { sendProblem, writeRawProblem } from "./problem.js";

export type { Peer } from "../tls/admission.js";

export type PeerHandler = (req: IncomingMessage, res: ServerResponse, peer: Peer) => void;

/** A handler on a listener that also serves clients without a certificate (enrollment). */
export type OptionalPeerHandler = (req: IncomingMessage, res: ServerResponse, peer: Peer | undefined) => void;

/** Connection caps of one listener; 0 = no limit. */
export interface ConnectionLimits {
  maxConnections: number;
  maxConnectionsPerAddress: number;
  maxConnectionsPerIdentity: number;
  maxAnonymousConnections: number;
  maxAnonymousConnectionsPerAddress: number;
}

export interface MtlsServerOptions {
  name: string;
  secureContext: () => SecureContextOptions;
  minVersion: "TLSv1.2" | "TLSv1.3";
  handshakeTimeoutSeconds: number;
  maxHeaderBytes: number;
  maxHeaderCount: number;
  headersTimeoutSeconds: number;
  requestTimeoutSeconds: number;
  keepAliveTimeoutSeconds: number;
  connections: ConnectionLimits;
  revocations: RevocationIndex;
  /** Whether a certificate chains to Postern's CA, checked where OpenSSL's verdict hides it. */
  chainsToCa: (der: Buffer) => boolean;
  /** New connections allowed per source address; undefined: no limit. */
  handshakeLimit?: BucketLimit;
  metrics: MetricsRecorder;
  log: Logger;
  /**
   * With `anonymous: true` (the admin listener) a client without any certificate is served
   * with `peer` undefined, for token enrollment; a certificate that is presented must still
   * chain to the CA and not be revoked.
   */
  anonymous?: boolean;
  /** Seconds after notAfter that an otherwise valid certificate is still served (renewal grace); 0 = none. */
  expiredGraceSeconds?: number;
  now?: () => number;
  handler: PeerHandler | OptionalPeerHandler;
}

/** How often Node's HTTP server looks for requests past their header or request deadline. */
const TIMEOUT_CHECK_INTERVAL_MS = 1000;
/** setTimeout's ceiling; a certificate expiring later is caught by a later connection's check. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Connection {
  peer: Peer | undefined;
  releaseCaps: Array<() => void>;
  expiryTimer?: NodeJS.Timeout;
}

/**
 * An HTTPS listener that serves only clients whose certificate chains to Postern's CA, is
 * within its validity and is not revoked (`admitPeer`). Node's HTTP server owns the listening
 * socket, so its header, request and keep-alive timeouts really run; its connection listener is
 * taken off `secureConnection` and called only for admitted peers, so a refused client never
 * reaches HTTP parsing and every refusal is named in a metric. Connections are capped per
 * source address, per identity, in total, and hardest for anonymous (admin) clients; a
 * connection ends when its certificate expires or is revoked.
 */
export class MtlsServer {
  private readonly server: HttpsServer;
  private readonly connections = new Map<TLSSocket, Connection>();
  private readonly byAddress: ConnectionCaps;
  private readonly byIdentity: ConnectionCaps;
  private readonly anonymousByAddress: ConnectionCaps;
  private readonly now: () => number;
  private inFlight = 0;
  private draining = false;

  constructor(private readonly options: MtlsServerOptions) {
    this.now = options.now ?? Date.now;
    const limits = options.connections;
    this.byAddress = new ConnectionCaps(limits.maxConnectionsPerAddress, limits.maxConnections);
    this.byIdentity = new ConnectionCaps(limits.maxConnectionsPerIdentity, 0);
    this.anonymousByAddress = new ConnectionCaps(limits.maxAnonymousConnectionsPerAddress, limits.maxAnonymousConnections);
    this.server = createHttpsServer(
      {
        ...options.secureContext(),
        ...SERVER_TLS_OPTIONS,
        requestCert: true,
        rejectUnauthorized: false,
        minVersion: options.minVersion,
        handshakeTimeout: options.handshakeTimeoutSeconds * 1000,
        ALPNProtocols: ["http/1.1"],
        maxHeaderSize: options.maxHeaderBytes,
        headersTimeout: options.headersTimeoutSeconds * 1000,
        requestTimeout: Math.max(options.requestTimeoutSeconds, options.headersTimeoutSeconds) * 1000,
        keepAliveTimeout: options.keepAliveTimeoutSeconds * 1000,
        connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
        // Host is checked in onRequest, so that its absence gets a problem+json answer.
        requireHostHeader: false,
      },
      (req, res) => this.onRequest(req, res),
    );
    // Node would drop header lines past 2,000 silently, and a signature could then be checked
    // over another header set than the one sent: count them all and answer 431 instead.
    this.server.maxHeadersCount = 0;
    const [httpConnectionListener] = this.server.listeners("secureConnection") as Array<(socket: TLSSocket) => void>;
    if (!httpConnectionListener) throw new Error("node:https no longer attaches HTTP on secureConnection");
    this.server.removeAllListeners("secureConnection");
    this.server.on("secureConnection", (socket: TLSSocket) => this.onSecureConnection(socket, httpConnectionListener));
    // https turns TLS errors into HTTP 'clientError's; a failed handshake has no HTTP to answer.
    this.server.removeAllListeners("tlsClientError");
    this.server.on("tlsClientError", (error: NodeJS.ErrnoException, socket: TLSSocket) => {
      options.metrics.handshakeFailure(clientErrorReason(error));
      socket.destroy();
    });
    this.server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => this.onClientError(error, socket));
    this.server.on("connection", (socket: Socket) => this.onConnection(socket));
  }

  /** Before the handshake: the per-address rate and connection caps cost a TCP accept, not a TLS handshake. */
  private readonly handshakeLimiter = new MemoryRateLimiter();
  private onConnection(socket: Socket): void {
    const { metrics, handshakeLimit } = this.options;
    const address = socket.remoteAddress ?? "unknown";
    if (handshakeLimit && !this.handshakeLimiter.takeNow(address, handshakeLimit).allowed) {
      metrics.handshakeFailure("rate_limited");
      socket.destroy();
      return;
    }
    const release = this.byAddress.tryOpen(address);
    if (typeof release === "string") {
      metrics.connectionRefused(release === "total_limit" ? "total_limit" : "address_limit");
      socket.destroy();
      return;
    }
    socket.once("close", release);
  }

  private onSecureConnection(socket: TLSSocket, httpConnectionListener: (socket: TLSSocket) => void): void {
    const { metrics, log } = this.options;
    if (this.draining) {
      socket.destroy();
      return;
    }
    const admission = admitPeer(handshakeFacts(socket), {
      nowMs: this.now(),
      anonymous: this.options.anonymous === true,
      expiredGraceSeconds: this.options.expiredGraceSeconds ?? 0,
      isRevoked: (serial) => this.options.revocations.has(serial),
      chainsToCa: this.options.chainsToCa,
    });
    if (!admission.admitted) {
      metrics.handshakeFailure(admission.reason);
      log.info("handshake refused", { listener: this.options.name, reason: admission.reason, remote: socket.remoteAddress });
      socket.destroy();
      return;
    }
    const peer = admission.peer;
    const release = peer
      ? this.byIdentity.tryOpen(peer.identity.id)
      : this.anonymousByAddress.tryOpen(socket.remoteAddress ?? "unknown");
    if (typeof release === "string") {
      metrics.connectionRefused(peer ? "identity_limit" : "anonymous_limit");
      socket.destroy();
      return;
    }
    const connection: Connection = { peer, releaseCaps: [release] };
    if (peer) {
      metrics.handshake();
      // A connection never outlives its certificate.
      const remainingMs = peerExpiresAtMs(peer, this.options.expiredGraceSeconds ?? 0) - this.now();
      if (remainingMs < MAX_TIMER_MS) {
        connection.expiryTimer = setTimeout(() => {
          metrics.connectionEnded("expired");
          socket.destroy();
        }, Math.max(0, remainingMs) + 1).unref();
      }
    }
    metrics.connectionOpened();
    this.connections.set(socket, connection);
    socket.once("close", () => {
      this.connections.delete(socket);
      clearTimeout(connection.expiryTimer);
      for (const free of connection.releaseCaps) free();
      metrics.connectionClosed();
    });
    httpConnectionListener.call(this.server, socket);
  }

  /** Requests Node's parser refuses or times out still get a problem+json answer, then the connection closes. */
  private onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
    const timedOut = error.code === "ERR_HTTP_REQUEST_TIMEOUT";
    if (timedOut) this.options.metrics.requestTimedOut();
    if (!socket.writable || (error.code === "ECONNRESET" && !timedOut)) {
      socket.destroy();
      return;
    }
    const code = error.code === "HPE_HEADER_OVERFLOW" ? "headers-too-large" : timedOut ? "request-timeout" : "bad-request";
    writeRawProblem(socket, new PosternError(code));
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const connection = this.connections.get(req.socket as TLSSocket);
    if (!connection) {
      req.socket.destroy();
      return;
    }
    this.inFlight += 1;
    res.once("close", () => {
      this.inFlight -= 1;
    });
    res.setHeader("date", new Date(this.now()).toUTCString());
    if (this.draining) res.setHeader("connection", "close");
    try {
      const refusal = headerSectionRefusal(req, this.options.maxHeaderCount);
      if (refusal) throw refusal;
      (this.options.handler as OptionalPeerHandler)(req, res, connection.peer);
    } catch (error) {
      // A handler that throws synchronously must not take the process with it.
      if (!req.complete && !res.headersSent) res.setHeader("connection", "close");
      sendProblem(res, error, this.options.log, req.url);
    }
  }

  /** Drops connections whose peer certificate has this serial (revocation reaching live connections). */
  closeConnectionsOf(serial: string): number {
    let closed = 0;
    const wanted = canonicalSerial(serial);
    for (const [socket, connection] of this.connections) {
      if (connection.peer?.identity.serial === wanted) {
        socket.destroy();
        this.options.metrics.connectionEnded("revoked");
        closed += 1;
      }
    }
    return closed;
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /**
   * Stops accepting, lets in-flight requests finish (answering with `Connection: close`),
   * closes idle keep-alive connections, and after `drainTimeoutMs` drops what is left.
   */
  async close(drainTimeoutMs: number): Promise<void> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const deadline = Date.now() + drainTimeoutMs;
    while (this.inFlight > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      this.server.closeIdleConnections();
    }
    for (const socket of this.connections.keys()) socket.destroy();
    this.server.closeAllConnections();
    await closed;
  }
}

/** The TLS layer's facts about a completed handshake, for `admitPeer`. */
function handshakeFacts(socket: TLSSocket): HandshakeFacts {
  const authorizationError = socket.authorizationError === undefined || socket.authorizationError === null ? undefined : String(socket.authorizationError);
  const certificate = socket.getPeerCertificate();
  if (!certificate || Object.keys(certificate).length === 0 || !certificate.raw) {
    return { authorized: socket.authorized, authorizationError, certificate: undefined };
  }
  let identity;
  try {
    identity = identityFromCertificate(certificate);
  } catch {
    identity = undefined; // neither SAN URI nor CN
  }
  return { authorized: socket.authorized, authorizationError, certificate: { der: certificate.raw, identity, notBeforeMs: Date.parse(certificate.valid_from) } };
}

/**
 * Header rules no handler can enforce after Node has merged the lines: exactly one Host
 * (RFC 9112 §3.2), and no more lines than the limit.
 */
function headerSectionRefusal(req: IncomingMessage, maxHeaderCount: number): PosternError | undefined {
  const raw = req.rawHeaders;
  if (raw.length / 2 > maxHeaderCount) return new PosternError("headers-too-large", `at most ${maxHeaderCount} header lines`);
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === "host") hosts += 1;
  if (hosts !== 1) return new PosternError("bad-request", hosts === 0 ? "the Host header is required" : "more than one Host header");
  return undefined;
}
