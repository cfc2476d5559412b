import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { PathRouter } from "../gateway/index.js";
import type { Logger } from "../log.js";
import { sendBytes, sendProblem } from "./respond.js";

/** A public endpoint: a path pattern (`/ocsp/*` takes any rest) and the methods it answers. */
export interface PublicEndpoint {
  path: string;
  methods: readonly string[];
  handle(req: IncomingMessage, res: ServerResponse): void | Promise<void>;
}

/**
 * The unauthenticated listener: metrics, health, readiness and the PKI's public documents
 * (CA certificate, CRL, OCSP, JWKS). Everything it serves is public or signed.
 */
export class PublicServer {
  private readonly server: Server;
  private readonly router: PathRouter<PublicEndpoint>;

  constructor(
    endpoints: readonly PublicEndpoint[],
    private readonly log: Logger,
  ) {
    this.router = new PathRouter(endpoints.flatMap((value) => value.methods.map((method) => ({ method, path: value.path, value }))));
    // Unauthenticated: short timeouts, and a cap on open connections (Node drops the excess at accept).
    this.server = createServer(
      { requestTimeout: 10_000, headersTimeout: 10_000, keepAliveTimeout: 5_000, connectionsCheckingInterval: 1_000 },
      (req, res) => void this.route(req, res),
    );
    this.server.maxConnections = 1024;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader("date", new Date().toUTCString());
    const path = (req.url ?? "/").split("?")[0]!;
    try {
      await this.router.find(req.method ?? "", path).value.handle(req, res);
    } catch (error) {
      sendProblem(res, error, this.log, path);
    }
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

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

/** Answers with a fixed or computed body. */
export function staticEndpoint(
  path: string,
  contentType: string,
  body: () => string | Uint8Array | Promise<string | Uint8Array>,
  status: () => number = () => 200,
): PublicEndpoint {
  return {
    path,
    methods: ["GET", "HEAD"],
    async handle(req, res) {
      sendBytes(req, res, status(), contentType, await body());
    },
  };
}
