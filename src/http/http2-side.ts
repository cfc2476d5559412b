import { constants as h2, createServer as createH2Server, type Http2Server, type ServerHttp2Session } from "node:http2";
import type { TLSSocket } from "node:tls";
import { PosternError } from "../errors.js";
import type { Logger } from "../log.js";
import type { MetricsRecorder } from "../metrics/index.js";
import { sendProblem } from "./respond.js";
import type { AnyRequest, AnyResponse } from "./types.js";

export interface Http2SideOptions {
  maxConcurrentStreams: number;
  maxHeaderCount: number;
  maxHeaderBytes: number;
  requestTimeoutSeconds: number;
  keepAliveTimeoutSeconds: number;
  metrics: MetricsRecorder;
  log: Logger;
}

/**
 * The HTTP/2 side of an mTLS listener, fed admitted TLS sockets whose ALPN chose h2, each with
 * the connection it belongs to. Limits mirror HTTP/1's: header list size and count, concurrent
 * streams, the whole request within requestTimeoutSeconds, idle sessions closed like idle
 * keep-alive connections. Node itself refuses floods of invalid frames, rejected streams,
 * resets and CONTINUATION frames; these caps bound what is left.
 */
export class Http2Side<C> {
  private readonly server: Http2Server;
  /** A compat request's socket is a proxy, not the TLSSocket: requests find their connection by session. */
  private readonly sessions = new Map<ServerHttp2Session, C>();
  private attaching: C | undefined;

  constructor(options: Http2SideOptions, serve: (req: AnyRequest, res: AnyResponse, connection: C) => void) {
    this.server = createH2Server(
      {
        maxHeaderListPairs: options.maxHeaderCount + 8,
        maxSessionInvalidFrames: 100,
        maxSessionRejectedStreams: 100,
        maxSettings: 32,
        settings: { maxConcurrentStreams: options.maxConcurrentStreams, maxHeaderListSize: options.maxHeaderBytes, enablePush: false },
      },
      (req, res) => {
        const connection = this.sessions.get(req.stream.session as ServerHttp2Session);
        if (connection === undefined) return void req.stream.close(h2.NGHTTP2_REFUSED_STREAM);
        const deadline = setTimeout(() => {
          if (req.complete) return;
          options.metrics.requestTimedOut();
          if (!res.headersSent) sendProblem(res, new PosternError("request-timeout"), options.log, req.url);
          req.stream.close(h2.NGHTTP2_CANCEL);
        }, options.requestTimeoutSeconds * 1000).unref();
        res.once("close", () => clearTimeout(deadline));
        serve(req, res, connection);
      },
    );
    this.server.setTimeout(options.keepAliveTimeoutSeconds * 1000);
    this.server.on("session", (session: ServerHttp2Session) => {
      const connection = this.attaching;
      if (connection === undefined) return void session.destroy();
      this.sessions.set(session, connection);
      session.once("close", () => this.sessions.delete(session));
    });
  }

  /** Starts HTTP/2 on an admitted socket. */
  attach(socket: TLSSocket, connection: C): void {
    this.attaching = connection;
    this.server.emit("connection", socket);
    this.attaching = undefined;
  }

  /** GOAWAY on every session: clients open no new streams while the ones in flight finish. */
  drain(): void {
    for (const session of this.sessions.keys()) session.close();
  }
}
