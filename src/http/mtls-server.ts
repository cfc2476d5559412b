import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { SecureContextOptions, TLSSocket } from "node:tls";
import { PosternError } from "../errors.js";
import { logSampler, type Logger } from "../log.js";
import type { MetricsRecorder } from "../metrics/index.js";
import { canonicalSerial, type RevocationIndex } from "../pki/index.js";
import type { BucketLimit } from "../ratelimit/index.js";
import { admitPeer, alpnOptions, clientErrorReason, ConnectionCaps, ConnectionGate, handshakeFacts, peerExpiresAtMs, SERVER_TLS_OPTIONS, type Peer } from "../tls/index.js";
import { logAccess } from "./access-log.js";
import { headerSectionRefusal } from "./header-rules.js";
import { Http2Side } from "./http2-side.js";
import { sendProblem, writeRawProblem } from "./respond.js";
import type { AnyRequest, AnyResponse, OptionalPeerHandler, PeerHandler } from "./types.js";

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
  /** PROXY protocol (v1 or v2) from these senders: their client address counts for limits and logs. */
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
  /** A per-listener number, for the console to name one connection. */
  id: number;
  openedAtMs: number;
  peer: Peer | undefined;
  remote: string;
  release: () => void;
  expiryTimer?: NodeJS.Timeout;
}

/** One open connection, as the admin API lists it. */
export interface LiveConnection {
  listener: string;
  id: number;
  identity: string;
  serial: string;
  remote: string;
  openedAtMs: number;
}

/**
 * An HTTPS listener that serves only clients whose certificate chains to Postern's CA, is
 * within its validity and is not revoked (`admitPeer`). Node's HTTP server owns the listening
 * socket, so its header, request and keep-alive timeouts really run; its connection listener
 * runs only after the connection gate (PROXY header, handshake rate, address caps), and its
 * secure-connection listener only for admitted peers, so a refused client never reaches HTTP
 * parsing and every refusal is named in a metric. Identities and anonymous clients have caps
 * of their own; a connection ends when its certificate expires or is revoked.
 */
export class MtlsServer {
  private readonly server: HttpsServer;
  private readonly gate: ConnectionGate;
  private readonly h2: Http2Side<Connection> | undefined;
  private readonly connections = new Map<TLSSocket, Connection>();
  private readonly byIdentity: ConnectionCaps;
  private readonly anonymousByAddress: ConnectionCaps;
  private readonly now: () => number;
  /** At most 10 lines a second per kind of refusal: a flood of bad handshakes must not flood the log. */
  private readonly sampleLog = logSampler(10);
  private inFlight = 0;
  private lastConnectionId = 0;
  private draining = false;

  constructor(private readonly options: MtlsServerOptions) {
    this.now = options.now ?? Date.now;
    const limits = options.connections;
    this.byIdentity = new ConnectionCaps(limits.maxConnectionsPerIdentity, 0);
    this.anonymousByAddress = new ConnectionCaps(limits.maxAnonymousConnectionsPerAddress, limits.maxAnonymousConnections);
    this.gate = new ConnectionGate({ ...limits, ...options, headerTimeoutMs: options.handshakeTimeoutSeconds * 1000 });
    this.server = createHttpsServer(
      {
        ...this.contextOptions(),
        requestCert: true,
        rejectUnauthorized: false,
        handshakeTimeout: options.handshakeTimeoutSeconds * 1000,
        ...alpnOptions(options.http2 ? ["h2", "http/1.1"] : ["http/1.1"]),
        maxHeaderSize: options.maxHeaderBytes,
        headersTimeout: options.headersTimeoutSeconds * 1000,
        requestTimeout: Math.max(options.requestTimeoutSeconds, options.headersTimeoutSeconds) * 1000,
        keepAliveTimeout: options.keepAliveTimeoutSeconds * 1000,
        connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
        // Host is checked in `serve`, so that its absence gets a problem+json answer.
        requireHostHeader: false,
      },
      (req, res) => this.onRequest(req, res),
    );
    // Node would drop header lines past 2,000 silently, and a signature could then be checked
    // over another header set than the one sent: count them all and answer 431 instead.
    this.server.maxHeadersCount = 0;
    const startTls = this.takeListener<Socket>("connection");
    this.server.on("connection", (socket: Socket) => this.gate.accept(socket, (s) => startTls.call(this.server, s)));
    const startHttp = this.takeListener<TLSSocket>("secureConnection");
    this.server.on("secureConnection", (socket: TLSSocket) => this.onSecureConnection(socket, (s) => startHttp.call(this.server, s)));
    // https turns TLS errors into HTTP 'clientError's; a failed handshake has no HTTP to answer.
    this.server.removeAllListeners("tlsClientError");
    this.server.on("tlsClientError", (error: NodeJS.ErrnoException, socket: TLSSocket) => this.onHandshakeError(error, socket));
    this.server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => this.onClientError(error, socket));
    this.h2 = options.http2 ? new Http2Side({ ...options, ...options.http2 }, (req, res, connection) => this.serve(req, res, connection)) : undefined;
  }

  /**
   * Everything that goes into the secure context: the material of the moment and the fixed
   * policy (suites, no renegotiation, minimum version). `setSecureContext` resets what it is not
   * given, so a reload passes the whole set again.
   */
  private contextOptions(): SecureContextOptions {
    return { ...this.options.secureContext(), ...SERVER_TLS_OPTIONS, minVersion: this.options.minVersion };
  }

  /**
   * Builds the secure context again from `secureContext()` (a TLS reload): new handshakes get
   * it, connections already open keep theirs. Throws (and keeps the old context) when OpenSSL
   * refuses the material.
   */
  reloadSecureContext(): void {
    this.server.setSecureContext(this.contextOptions());
  }

  /** Takes Node's own listener off `event` (to call it later, once this server has decided); there must be one. */
  private takeListener<T>(event: "connection" | "secureConnection"): (socket: T) => void {
    const [listener] = this.server.listeners(event) as Array<(socket: T) => void>;
    if (!listener) throw new Error(`node:https no longer listens on ${event}`);
    this.server.removeAllListeners(event);
    return listener;
  }

  private onHandshakeError(error: NodeJS.ErrnoException, socket: TLSSocket): void {
    const reason = clientErrorReason(error);
    this.options.metrics.handshakeFailure(reason);
    this.sampleLog(`failed:${reason}`, (suppressed) =>
      this.options.log.info("handshake failed", { listener: this.options.name, reason, remote: this.gate.clientAddress(socket), ...(suppressed > 0 ? { suppressedSinceLast: suppressed } : {}) }),
    );
    socket.destroy();
  }

  private onSecureConnection(socket: TLSSocket, startHttp: (socket: TLSSocket) => void): void {
    const { metrics, log } = this.options;
    if (this.draining) return void socket.destroy();
    const facts = handshakeFacts(socket);
    const admission = admitPeer(facts, {
      nowMs: this.now(),
      anonymous: this.options.anonymous === true,
      expiredGraceSeconds: this.options.expiredGraceSeconds ?? 0,
      isRevoked: (serial) => this.options.revocations.has(serial),
      chainsToCa: this.options.chainsToCa,
    });
    const remote = this.gate.clientAddress(socket);
    if (!admission.admitted) {
      metrics.handshakeFailure(admission.reason);
      const identity = facts.certificate?.identity;
      this.sampleLog(`refused:${admission.reason}`, (suppressed) =>
        log.info("handshake refused", {
          listener: this.options.name,
          reason: admission.reason,
          remote,
          ...(identity ? { identity: identity.id, serial: identity.serial } : {}),
          ...(suppressed > 0 ? { suppressedSinceLast: suppressed } : {}),
        }),
      );
      return void socket.destroy();
    }
    const peer = admission.peer;
    const release = peer ? this.byIdentity.tryOpen(peer.identity.id) : this.anonymousByAddress.tryOpen(remote);
    if (typeof release === "string") {
      metrics.connectionRefused(peer ? "identity_limit" : "anonymous_limit");
      return void socket.destroy();
    }
    const connection: Connection = { id: ++this.lastConnectionId, openedAtMs: this.now(), peer, remote, release };
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
      connection.release();
      metrics.connectionClosed();
    });
    if (socket.alpnProtocol === "h2" && this.h2) this.h2.attach(socket, connection);
    else startHttp(socket);
  }

  /** Requests Node's parser refuses or times out still get a problem+json answer, then the connection closes. */
  private onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
    const timedOut = error.code === "ERR_HTTP_REQUEST_TIMEOUT";
    if (timedOut) this.options.metrics.requestTimedOut();
    if (!socket.writable || (error.code === "ECONNRESET" && !timedOut)) return void socket.destroy();
    const code = error.code === "HPE_HEADER_OVERFLOW" ? "headers-too-large" : timedOut ? "request-timeout" : "bad-request";
    writeRawProblem(socket, new PosternError(code));
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const connection = this.connections.get(req.socket as TLSSocket);
    if (!connection) return void req.socket.destroy();
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

  /** The open connections with a client certificate: who, from where, since when. */
  liveConnections(): LiveConnection[] {
    const live: LiveConnection[] = [];
    for (const c of this.connections.values()) {
      if (!c.peer) continue;
      live.push({ listener: this.options.name, id: c.id, identity: c.peer.identity.id, serial: c.peer.identity.serial, remote: c.remote, openedAtMs: c.openedAtMs });
    }
    return live;
  }

  /** Closes the connection `id` (from `liveConnections`); false when it is gone already. */
  closeConnection(id: number): boolean {
    for (const [socket, connection] of this.connections) {
      if (connection.id !== id) continue;
      socket.destroy();
      return true;
    }
    return false;
  }

  /** Drops connections whose peer certificate has this serial (revocation reaching live connections). */
  closeConnectionsOf(serial: string): number {
    let closed = 0;
    const wanted = canonicalSerial(serial);
    for (const [socket, connection] of this.connections) {
      if (connection.peer?.identity.serial !== wanted) continue;
      socket.destroy();
      this.options.metrics.connectionEnded("revoked");
      closed += 1;
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
   * Stops accepting, lets in-flight requests finish (answering with `Connection: close`, or
   * GOAWAY over HTTP/2), closes idle keep-alive connections, and after `drainTimeoutMs` drops
   * what is left.
   */
  async close(drainTimeoutMs: number): Promise<void> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    this.h2?.drain();
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
