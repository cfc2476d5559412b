import type { IncomingMessage, ServerResponse } from "node:http";
import {
  constants as h2,
  createServer as createH2Server,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Session,
} from "node:http2";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { SecureContextOptions, TLSSocket } from "node:tls";
import { PosternError } from "../errors.js";
import { logSampler, type Logger } from "../log.js";
import type { MetricsRecorder } from "../metrics/index.js";
import { identityFromCertificate, canonicalSerial, type RevocationIndex } from "../pki/index.js";
import { admitPeer, peerExpiresAtMs, type HandshakeFacts, type Peer, ConnectionCaps, clientErrorReason, readProxyHeader, SERVER_TLS_OPTIONS } from "../tls/index.js";
import { logAccess } from "./access-log.js";
import { MemoryRateLimiter, type BucketLimit } from "../ratelimit/index.js";
import { sendProblem, writeRawProblem } from "./respond.js";

export type { Peer } from "../tls/index.js";

/** A request over HTTP/1.1 or HTTP/2 (Node's compatibility API): the parts handlers use are the same. */
export type AnyRequest = IncomingMessage | Http2ServerRequest;
export type AnyResponse = ServerResponse | Http2ServerResponse;

export type PeerHandler = (req: AnyRequest, res: AnyResponse, peer: Peer) => void;

/** A handler on a listener that also serves clients without a certificate (enrollment). */
export type OptionalPeerHandler = (req: AnyRequest, res: AnyResponse, peer: Peer | undefined) => void;

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
  /**
   * PROXY protocol (v1 or v2) from these senders: their connections must start with a header
   * naming the client, whose address then counts for rate limits, caps and logs.
   */
  proxyProtocol?: { isTrusted(address: string): boolean } | undefined;
  /** One log line per request (`logAccess`); refused handshakes are logged either way, sampled. */
  accessLog?: boolean;
  /** Offer HTTP/2 (ALPN h2) beside HTTP/1.1, with at most this many concurrent streams per connection. */
  http2?: { maxConcurrentStreams: number } | undefined;
  handler: PeerHandler | OptionalPeerHandler;
}

/** How often Node's HTTP server looks for requests past their header or request deadline. */
const TIMEOUT_CHECK_INTERVAL_MS = 1000;
/** setTimeout's ceiling; a certificate expiring later is caught by a later connection's check. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Connection {
  peer: Peer | undefined;
  remote: string;
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
  private readonly h2: Http2Server | undefined;
  private readonly connections = new Map<TLSSocket, Connection>();
  /** HTTP/2 sessions and the connection each runs on (a compat request's socket is a proxy, not the TLSSocket). */
  private readonly sessions = new Map<ServerHttp2Session, Connection>();
  private attaching: Connection | undefined;
  /** The client address behind each connection ("peer address:port" as the TLS socket reports it), set from a PROXY header. */
  private readonly proxiedAddresses = new Map<string, string>();
  private readonly byAddress: ConnectionCaps;
  private readonly byIdentity: ConnectionCaps;
  private readonly anonymousByAddress: ConnectionCaps;
  private readonly now: () => number;
  /** At most 10 lines a second per kind of refusal: a flood of bad handshakes must not flood the log. */
  private readonly sampleLog = logSampler(10);
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
        ALPNProtocols: options.http2 ? ["h2", "http/1.1"] : ["http/1.1"],
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
      const reason = clientErrorReason(error);
      options.metrics.handshakeFailure(reason);
      this.sampleLog(`failed:${reason}`, (suppressed) =>
        options.log.info("handshake failed", {
          listener: options.name,
          reason,
          remote: socket.remoteAddress,
          ...(suppressed > 0 ? { suppressedSinceLast: suppressed } : {}),
        }),
      );
      socket.destroy();
    });
    this.server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => this.onClientError(error, socket));
    // TLS's own connection listener starts the handshake at once: it runs only after the
    // connection was counted (and its PROXY header, if any, read).
    const [tlsConnectionListener] = this.server.listeners("connection") as Array<(socket: Socket) => void>;
    if (!tlsConnectionListener) throw new Error("node:tls no longer starts handshakes on connection");
    this.server.removeAllListeners("connection");
    this.server.on("connection", (socket: Socket) => this.onConnection(socket, tlsConnectionListener));
    this.h2 = options.http2 ? this.createHttp2(options.http2.maxConcurrentStreams) : undefined;
  }

  /**
   * The HTTP/2 side, fed admitted TLS sockets whose ALPN chose h2. Limits mirror HTTP/1's:
   * header list size and count, concurrent streams; Node refuses floods of invalid frames,
   * rejected streams, resets and CONTINUATION frames itself, and these caps bound what is left.
   */
  private createHttp2(maxConcurrentStreams: number): Http2Server {
    const { options } = this;
    const server = createH2Server(
      {
        maxHeaderListPairs: options.maxHeaderCount + 8,
        maxSessionInvalidFrames: 100,
        maxSessionRejectedStreams: 100,
        maxSettings: 32,
        settings: { maxConcurrentStreams, maxHeaderListSize: options.maxHeaderBytes, enablePush: false },
      },
      (req, res) => {
        const connection = this.sessions.get(req.stream.session as ServerHttp2Session);
        if (!connection) return void req.stream.close(h2.NGHTTP2_REFUSED_STREAM);
        // The whole request (headers are in by now) must arrive within requestTimeoutSeconds.
        const deadline = setTimeout(() => {
          if (req.complete) return;
          options.metrics.requestTimedOut();
          if (!res.headersSent) sendProblem(res, new PosternError("request-timeout"), options.log, req.url);
          req.stream.close(h2.NGHTTP2_CANCEL);
        }, options.requestTimeoutSeconds * 1000).unref();
        res.once("close", () => clearTimeout(deadline));
        this.serve(req, res, connection);
      },
    );
    // An idle session (no stream, no frame) ends like an idle keep-alive connection.
    server.setTimeout(options.keepAliveTimeoutSeconds * 1000);
    server.on("session", (session: ServerHttp2Session) => {
      const connection = this.attaching;
      if (!connection) return void session.destroy();
      this.sessions.set(session, connection);
      session.once("close", () => this.sessions.delete(session));
    });
    return server;
  }

  private onConnection(socket: Socket, startTls: (socket: Socket) => void): void {
    const peerAddress = socket.remoteAddress ?? "unknown";
    const proxy = this.options.proxyProtocol;
    if (!proxy?.isTrusted(peerAddress)) return this.countConnection(socket, peerAddress, startTls);
    readProxyHeader(socket, this.options.handshakeTimeoutSeconds * 1000).then(
      (source) => {
        const key = `${peerAddress}:${socket.remotePort}`;
        const address = source ?? peerAddress;
        this.proxiedAddresses.set(key, address);
        socket.once("close", () => this.proxiedAddresses.delete(key));
        this.countConnection(socket, address, startTls);
      },
      (error: Error) => {
        this.options.metrics.handshakeFailure("protocol");
        this.options.log.info("PROXY protocol header refused", { listener: this.options.name, remote: peerAddress, reason: error.message });
        socket.destroy();
      },
    );
  }

  /** The client's address: from a PROXY header when a trusted sender gave one, else the TCP peer's. */
  private clientAddress(socket: TLSSocket): string {
    const peer = socket.remoteAddress ?? "unknown";
    return this.proxiedAddresses.get(`${peer}:${socket.remotePort}`) ?? peer;
  }

  /** Before the handshake: the per-address rate and connection caps cost a TCP accept, not a TLS handshake. */
  private readonly handshakeLimiter = new MemoryRateLimiter();
  private countConnection(socket: Socket, address: string, startTls: (socket: Socket) => void): void {
    const { metrics, handshakeLimit } = this.options;
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
    startTls.call(this.server, socket);
  }

  private onSecureConnection(socket: TLSSocket, httpConnectionListener: (socket: TLSSocket) => void): void {
    const { metrics, log } = this.options;
    if (this.draining) {
      socket.destroy();
      return;
    }
    const facts = handshakeFacts(socket);
    const admission = admitPeer(facts, {
      nowMs: this.now(),
      anonymous: this.options.anonymous === true,
      expiredGraceSeconds: this.options.expiredGraceSeconds ?? 0,
      isRevoked: (serial) => this.options.revocations.has(serial),
      chainsToCa: this.options.chainsToCa,
    });
    if (!admission.admitted) {
      metrics.handshakeFailure(admission.reason);
      const identity = facts.certificate?.identity;
      this.sampleLog(`refused:${admission.reason}`, (suppressed) =>
        log.info("handshake refused", {
          listener: this.options.name,
          reason: admission.reason,
          remote: this.clientAddress(socket),
          ...(identity ? { identity: identity.id, serial: identity.serial } : {}),
          ...(suppressed > 0 ? { suppressedSinceLast: suppressed } : {}),
        }),
      );
      socket.destroy();
      return;
    }
    const peer = admission.peer;
    const release = peer
      ? this.byIdentity.tryOpen(peer.identity.id)
      : this.anonymousByAddress.tryOpen(this.clientAddress(socket));
    if (typeof release === "string") {
      metrics.connectionRefused(peer ? "identity_limit" : "anonymous_limit");
      socket.destroy();
      return;
    }
    const connection: Connection = { peer, remote: this.clientAddress(socket), releaseCaps: [release] };
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
    if (socket.alpnProtocol === "h2" && this.h2) {
      this.attaching = connection;
      this.h2.emit("connection", socket);
      this.attaching = undefined;
    } else {
      httpConnectionListener.call(this.server, socket);
    }
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
    this.serve(req, res, connection);
  }

  /** One request over either protocol: header rules, then the handler, inside one error boundary. */
  private serve(req: AnyRequest, res: AnyResponse, connection: Connection): void {
    const http1 = req.httpVersionMajor === 1;
    this.inFlight += 1;
    res.once("close", () => {
      this.inFlight -= 1;
    });
    res.setHeader("date", new Date(this.now()).toUTCString());
    if (this.options.accessLog) logAccess(req, res, { listener: this.options.name, peer: connection.peer, remote: connection.remote, log: this.options.log });
    if (this.draining && http1) res.setHeader("connection", "close");
    try {
      const refusal = headerSectionRefusal(req, this.options.maxHeaderCount);
      if (refusal) throw refusal;
      (this.options.handler as OptionalPeerHandler)(req, res, connection.peer);
    } catch (error) {
      // A handler that throws synchronously must not take the process with it.
      if (http1 && !req.complete && !res.headersSent) res.setHeader("connection", "close");
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
    // HTTP/2: GOAWAY, so clients open no new streams while the ones in flight finish.
    for (const session of this.sessions.keys()) session.close();
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
 * Header rules no handler can enforce after Node has merged the lines: no more lines than the
 * limit, and one authority: exactly one Host over HTTP/1.1 (RFC 9112 §3.2); over HTTP/2,
 * `:authority` or one Host, and the same one when both are sent (RFC 9113 §8.3.1).
 */
function headerSectionRefusal(req: AnyRequest, maxHeaderCount: number): PosternError | undefined {
  const raw = req.rawHeaders;
  let lines = 0;
  const hosts: string[] = [];
  let authority: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.startsWith(":")) {
      if (name === ":authority") authority = raw[i + 1];
      continue;
    }
    lines += 1;
    if (name.length === 4 && name.toLowerCase() === "host") hosts.push(raw[i + 1]!);
  }
  if (lines > maxHeaderCount) return new PosternError("headers-too-large", `at most ${maxHeaderCount} header lines`);
  if (hosts.length > 1) return new PosternError("bad-request", "more than one Host header");
  if (req.httpVersionMajor === 1 && hosts.length === 0) return new PosternError("bad-request", "the Host header is required");
  if (authority !== undefined && hosts.length === 1 && hosts[0]!.toLowerCase() !== authority.toLowerCase()) {
    return new PosternError("bad-request", ":authority and Host differ");
  }
  if (authority === undefined && hosts.length === 0) return new PosternError("bad-request", "the request names no authority");
  return undefined;
}

/** The request's authority: HTTP/2's `:authority`, else Host; lowercase. Call after `headerSectionRefusal` passed. */
export function requestAuthority(req: AnyRequest): string {
  const authority = req.headers[":authority"] ?? req.headers.host;
  return String(authority ?? "").toLowerCase();
}
