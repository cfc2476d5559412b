import type { Gateway } from "../gateway/index.js";
import type { Logger } from "../log.js";
import type { MetricsRecorder } from "../metrics/index.js";
import type { HttpMessageParts } from "../signing/index.js";
import { accessRecordOf } from "./access-log.js";
import { readBody } from "./body.js";
import type { Peer } from "../tls/index.js";
import { requestAuthority } from "./header-rules.js";
import type { AnyRequest, AnyResponse } from "./types.js";
import { sendJson, sendProblem } from "./respond.js";

/** The data-plane request handler: turns a Node request into the gateway's plain values. */
export function dataPlaneHandler(deps: { gateway: Gateway; metrics: MetricsRecorder; log: Logger }) {
  return (req: AnyRequest, res: AnyResponse, peer: Peer): void => {
    const started = performance.now();
    const method = req.method ?? "";
    const target = req.url ?? "";
    const queryAt = target.indexOf("?");
    const path = queryAt === -1 ? target : target.slice(0, queryAt);
    let route = "none";
    const access = accessRecordOf(req);

    const finish = (outcome: string, status: number) => {
      if (access) {
        access.route = route;
        access.outcome = outcome;
      }
      deps.metrics.request(route, outcome, status);
      deps.metrics.observeSeconds("request", (performance.now() - started) / 1000);
    };

    const message: HttpMessageParts = {
      method,
      scheme: "https",
      authority: requestAuthority(req),
      path,
      query: queryAt === -1 ? "" : target.slice(queryAt),
      headers: pairs(req.rawHeaders),
    };

    deps.gateway
      .handle({
        identity: peer.identity,
        peerCertDer: peer.certDer,
        message,
        readBody: async (limit) => {
          const body = await readBody(req, limit);
          if (access) access.bytesIn = body.length;
          return body;
        },
        onRoute: (name) => (route = name),
      })
      .then(
        (answer) => {
          if (answer.kind === "json") {
            if (access && typeof answer.body.id === "string") access.messageId = answer.body.id;
            sendJson(res, answer.status, answer.body);
          } else {
            res.writeHead(answer.status, { ...answer.headers, "content-length": answer.body.byteLength });
            res.end(answer.body);
          }
          finish(answer.kind === "json" ? "accepted" : "forwarded", answer.status);
        },
        (error: unknown) => {
          // An unread body would be parsed as the next request: the connection closes after this answer.
          if (req.httpVersionMajor === 1 && !req.complete && !res.headersSent) res.setHeader("connection", "close");
          const problem = sendProblem(res, error, deps.log, path);
          finish(problem.code, problem.status);
        },
      )
      .catch((error: unknown) => {
        // The answer itself failed: log it and drop the connection; the process keeps serving.
        deps.log.error("answering a request failed", { error: String((error as Error)?.stack ?? error), instance: path });
        res.destroy();
      });
  };
}

/** Header lines in wire order, without HTTP/2 pseudo-headers (their values reach the gateway as method, path, authority). */
function pairs(raw: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) if (!raw[i]!.startsWith(":")) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}
