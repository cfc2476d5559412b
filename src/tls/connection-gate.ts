import type { Socket } from "node:net";
import type { Logger } from "../log.js";
import type { MetricsRecorder } from "../metrics/index.js";
import { MemoryRateLimiter, type BucketLimit } from "../ratelimit/index.js";
import { ConnectionCaps } from "./connection-caps.js";
import { readProxyHeader } from "./proxy-reader.js";

export interface ConnectionGateOptions {
  name: string;
  /** New connections allowed per client address; undefined: no limit. */
  handshakeLimit?: BucketLimit | undefined;
  maxConnectionsPerAddress: number;
  maxConnections: number;
  /** PROXY protocol (v1/v2) from these senders: their connections must start with a header naming the client. */
  proxyProtocol?: { isTrusted(address: string): boolean } | undefined;
  /** How long a trusted sender may take to send its PROXY header. */
  headerTimeoutMs: number;
  metrics: MetricsRecorder;
  log: Logger;
}

/**
 * What happens to a TCP connection before its TLS handshake: a PROXY header read from a
 * trusted load balancer (the client's address then counts, not the balancer's), the
 * per-address handshake rate, and the per-address and total connection caps. A refusal here
 * costs a TCP accept, not a TLS handshake.
 */
export class ConnectionGate {
  private readonly limiter = new MemoryRateLimiter();
  private readonly caps: ConnectionCaps;
  /** The client address behind each connection ("peer address:port" as its TLS socket reports it), from a PROXY header. */
  private readonly proxied = new Map<string, string>();

  constructor(private readonly options: ConnectionGateOptions) {
    this.caps = new ConnectionCaps(options.maxConnectionsPerAddress, options.maxConnections);
  }

  /** Admits `socket` and calls `startTls` with it, or destroys it and counts why. */
  accept(socket: Socket, startTls: (socket: Socket) => void): void {
    const peerAddress = socket.remoteAddress ?? "unknown";
    if (!this.options.proxyProtocol?.isTrusted(peerAddress)) return this.count(socket, peerAddress, startTls);
    readProxyHeader(socket, this.options.headerTimeoutMs).then(
      (source) => {
        const key = `${peerAddress}:${socket.remotePort}`;
        this.proxied.set(key, source ?? peerAddress);
        socket.once("close", () => this.proxied.delete(key));
        this.count(socket, source ?? peerAddress, startTls);
      },
      (error: Error) => {
        this.options.metrics.handshakeFailure("protocol");
        this.options.log.info("PROXY protocol header refused", { listener: this.options.name, remote: peerAddress, reason: error.message });
        socket.destroy();
      },
    );
  }

  /** The client's address: from a PROXY header when a trusted sender gave one, else the TCP peer's. */
  clientAddress(socket: Socket): string {
    const peer = socket.remoteAddress ?? "unknown";
    return this.proxied.get(`${peer}:${socket.remotePort}`) ?? peer;
  }

  private count(socket: Socket, address: string, startTls: (socket: Socket) => void): void {
    const { metrics, handshakeLimit } = this.options;
    if (handshakeLimit && !this.limiter.takeNow(address, handshakeLimit).allowed) {
      metrics.handshakeFailure("rate_limited");
      socket.destroy();
      return;
    }
    const release = this.caps.tryOpen(address);
    if (typeof release === "string") {
      metrics.connectionRefused(release === "total_limit" ? "total_limit" : "address_limit");
      socket.destroy();
      return;
    }
    socket.once("close", release);
    startTls(socket);
  }
}
