import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { PosternError } from "../errors.js";
import type { Logger } from "../log.js";
import { sendProblem } from "./respond.js";

/** A public endpoint: answers a request whose path starts with its prefix (exact match unless `prefix`). */
export interface PublicEndpoint {
  path: string;
  prefix?: boolean;
  methods: readonly string[];
  handle(req: IncomingMessage, res: ServerResponse): void | Promise<void>;
}

/**
 * The unauthenticated listener: metrics, health, readiness and the PKI's public documents
 * (CA certificate, CRL, OCSP, JWKS). Everything it serves is public or signed.
 */
export class PublicServer {
  private readonly server: Server;

  constructor(
    private readonly endpoints: readonly PublicEndpoint[],
    private readonly log: Logger,
  ) {
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
      const endpoint = this.endpoints.find((e) => (e.prefix ? path.startsWith(e.path) : path === e.path));
      if (!endpoint) throw new PosternError("not-found", "no such public endpoint");
      if (!endpoint.methods.includes(req.method ?? "")) {
        res.setHeader("allow", endpoint.methods.join(", "));
        throw new PosternError("method-not-allowed", `use ${endpoint.methods.join(" or ")}`);
      }
      await endpoint.handle(req, res);
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
      const payload = await body();
      res.writeHead(status(), {
        "content-type": contentType,
        "content-length": typeof payload === "string" ? Buffer.byteLength(payload) : payload.byteLength,
        "cache-control": "no-store",
      });
      res.end(req.method === "HEAD" ? undefined : payload);
    },
  };
}
