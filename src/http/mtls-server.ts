import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createServer as createTlsServer, type SecureContextOptions, type TLSSocket } from "node:tls";
import { PosternError } from "../errors.js";
import type { Logger } from "../log.js";
import type { MetricsRecorder } from "../metrics/recorder.js";
import { identityFromCertificate, type ClientIdentity } from "../pki/identity.js";
import { canonicalSerial } from "../pki/serial.js";
import { clientErrorReason, handshakeRefusal } from "../tls/handshake.js";
import type { RevocationIndex } from "../tls/revocation-index.js";
import { MemoryRateLimiter, type BucketLimit } from "../ratelimit/token-bucket.js";

/** The verified peer of a connection: its identity and certificate DER. */
export interface Peer {
  identity: ClientIdentity;
  certDer: Buffer;
  /** Set when an expired certificate was let in for renewal within the grace period. */
  expired?: boolean;
}

export type PeerHandler = (req: IncomingMessage, res: ServerResponse, peer: Peer) => void;

/** A handler on a listener that also serves clients without a certificate (enrollment). */
export type OptionalPeerHandler = (req: IncomingMessage, res: ServerResponse, peer: Peer | undefined) => void;

export interface MtlsServerOptions {
  name: string;
  secureContext: () => SecureContextOptions;
  minVersion: "TLSv1.2" | "TLSv1.3";
  handshakeTimeoutSeconds: number;
  maxHeaderBytes: number;
  requestTimeoutSeconds: number;
  keepAliveTimeoutSeconds: number;
  revocations: RevocationIndex;
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
  handler: PeerHandler | OptionalPeerHandler;
}

const peers = new WeakMap<object, Peer | "anonymous">();

/**
 * An HTTPS listener that serves only clients whose certificate chains to Postern's CA and
 * is not revoked. TLS and HTTP are split on purpose: the TLS server judges each completed
 * handshake, names the reason for a refusal in a metric, and hands only accepted sockets to
 * the HTTP server, so a refused client never reaches HTTP parsing.
 */
export class MtlsServer {
  private readonly tls;
  private readonly http;
  private readonly sockets = new Set<TLSSocket>();
  private inFlight = 0;
  private draining = false;

  constructor(private readonly options: MtlsServerOptions) {
    this.http = createHttpServer(
      {
        maxHeaderSize: options.maxHeaderBytes,
        requestTimeout: options.requestTimeoutSeconds * 1000,
        headersTimeout: Math.min(options.requestTimeoutSeconds, 60) * 1000,
        keepAliveTimeout: options.keepAliveTimeoutSeconds * 1000,
      },
      (req, res) => this.onRequest(req, res),
    );
    // Requests Node's parser refuses (oversized or malformed header sections) still get a
    // problem+json answer, then the connection closes.
    this.http.on("clientError", (error: NodeJS.ErrnoException, socket) => {
      if (!socket.writable) return socket.destroy();
      const problem = new PosternError(error.code === "HPE_HEADER_OVERFLOW" ? "headers-too-large" : "bad-request").toProblem();
      const body = JSON.stringify(problem);
      // Keep reading (and dropping) what the client still sends, or a client blocked writing a
      // huge header section would never read this answer; then close for good.
      socket.resume();
      setTimeout(() => socket.destroy(), 2000).unref();
      socket.end(
        `HTTP/1.1 ${problem.status} ${problem.title}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\nDate: ${new Date().toUTCString()}\r\n\r\n${body}`,
      );
    });
    this.tls = createTlsServer({
      ...options.secureContext(),
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: options.minVersion,
      handshakeTimeout: options.handshakeTimeoutSeconds * 1000,
      ALPNProtocols: ["http/1.1"],
    });
    const handshakeLimit = options.handshakeLimit;
    if (handshakeLimit) {
      const limiter = new MemoryRateLimiter();
      // Refused before the handshake starts: a reconnect storm costs a TCP accept, not a TLS handshake.
      this.tls.on("connection", (socket) => {
        if (!limiter.takeNow(socket.remoteAddress ?? "unknown", handshakeLimit).allowed) {
          options.metrics.handshakeFailure("rate_limited");
          socket.destroy();
        }
      });
    }
    this.tls.on("secureConnection", (socket) => this.onSecureConnection(socket));
    this.tls.on("tlsClientError", (error) => options.metrics.handshakeFailure(clientErrorReason(error)));
  }

  private onSecureConnection(socket: TLSSocket): void {
    const { metrics, log, revocations } = this.options;
    const refusal = handshakeRefusal(socket);
    let peer: Peer | undefined;
    let failure = refusal;
    if (!refusal || refusal === "expired") {
      const certificate = socket.getPeerCertificate();
      peer = { identity: identityFromCertificate(certificate), certDer: certificate.raw };
      if (refusal === "expired") {
        const graceMs = (this.options.expiredGraceSeconds ?? 0) * 1000;
        if (graceMs > 0 && Date.now() <= peer.identity.notAfterMs + graceMs) {
          peer.expired = true;
          failure = undefined;
        } else {
          peer = undefined;
        }
      }
    }
    const anonymous = failure === "no_cert" && this.options.anonymous === true;
    const reason = anonymous ? undefined : (failure ?? (peer && revocations.has(peer.identity.serial) ? "revoked" : undefined));
    if (reason || (!peer && !anonymous) || this.draining) {
      if (reason) {
        metrics.handshakeFailure(reason);
        log.info("handshake refused", { listener: this.options.name, reason, remote: socket.remoteAddress });
      }
      socket.destroy();
      return;
    }
    if (peer) metrics.handshake();
    metrics.connectionOpened();
    this.sockets.add(socket);
    socket.once("close", () => {
      this.sockets.delete(socket);
      metrics.connectionClosed();
    });
    peers.set(socket, peer ?? "anonymous");
    this.http.emit("connection", socket);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const peer = peers.get(req.socket);
    if (!peer) {
      req.socket.destroy();
      return;
    }
    this.inFlight += 1;
    res.once("close", () => {
      this.inFlight -= 1;
    });
    res.setHeader("date", new Date().toUTCString());
    if (this.draining) res.setHeader("connection", "close");
    (this.options.handler as OptionalPeerHandler)(req, res, peer === "anonymous" ? undefined : peer);
  }

  /** Drops connections whose peer certificate has this serial (revocation reaching live connections). */
  closeConnectionsOf(serial: string): number {
    let closed = 0;
    for (const socket of this.sockets) {
      const peer = peers.get(socket);
      if (peer && peer !== "anonymous" && peer.identity.serial === canonicalSerial(serial)) {
        socket.destroy();
        closed += 1;
      }
    }
    return closed;
  }

  /** Replaces certificates and CA bundle for new handshakes, keeping live connections. */
  reloadContext(): void {
    this.tls.setSecureContext(this.options.secureContext());
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.tls.once("error", reject);
      this.tls.listen(port, host, () => {
        this.tls.off("error", reject);
        resolve(this.tls.address() as AddressInfo);
      });
    });
  }

  /**
   * Stops accepting, lets in-flight requests finish (answering with `Connection: close`),
   * closes idle keep-alive connections, and after `drainTimeoutMs` drops what is left.
   */
  async close(drainTimeoutMs: number): Promise<void> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.tls.close(() => resolve()));
    this.http.closeIdleConnections();
    const deadline = Date.now() + drainTimeoutMs;
    while (this.inFlight > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      this.http.closeIdleConnections();
    }
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}
