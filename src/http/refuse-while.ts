import type { MetricsRecorder } from "../metrics/index.js";
import type { Logger } from "../log.js";
import type { PosternError } from "../errors.js";
import type { PeerHandler } from "./types.js";
import { sendProblem } from "./respond.js";

/**
 * Wraps a data-plane handler so that, while `refusal()` returns an error, every request is
 * answered with it (problem+json, counted under route "none") and never reaches the handler.
 * Used to fail closed while the PKI's trust state is lost (`pki-state-lost`): one function
 * call per request, the pipeline untouched. An unread body is not parsed as a next request:
 * the connection closes after the answer.
 */
export function refuseWhile(handler: PeerHandler, refusal: () => PosternError | undefined, deps: { metrics: MetricsRecorder; log: Logger }): PeerHandler {
  return (req, res, peer) => {
    const error = refusal();
    if (!error) return handler(req, res, peer);
    const problem = sendProblem(res, error, deps.log, (req.url ?? "").split("?")[0]);
    if (!req.complete) res.once("finish", () => req.socket.destroySoon());
    deps.metrics.request("none", problem.code, problem.status);
  };
}
