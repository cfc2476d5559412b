/**
 * What the rest of Postern reports. Only `prometheus.ts` knows prom-client; everything else
 * depends on this port, and tests may pass `noopRecorder`.
 */
export type HandshakeFailure = "no_cert" | "unknown_ca" | "expired" | "revoked" | "not_yet_valid" | "timeout" | "protocol" | "rate_limited" | "other";

export type TimedStage = "request" | "verify" | "replay_claim" | "forward";

export interface MetricsRecorder {
  /** One finished request on the data plane: the route name ("none" if unmatched) and the outcome code ("accepted" or an error code). */
  request(route: string, outcome: string, status: number): void;
  observeSeconds(stage: TimedStage, seconds: number): void;
  handshake(): void;
  handshakeFailure(reason: HandshakeFailure): void;
  connectionOpened(): void;
  connectionClosed(): void;
  redisAvailable(up: boolean): void;
  certificateIssued(kind: "issued" | "renewed", notAfterMs: number): void;
  certificateRevoked(reason: string): void;
  /** One hand-over to a backend: outcome "ok", "error", "timeout", "rejected" (breaker open). */
  backendRequest(backend: string, outcome: "ok" | "error" | "timeout" | "rejected", seconds: number): void;
  /** A backend's circuit breaker state: 0 closed, 1 half-open, 2 open. */
  breakerState(backend: string, state: "closed" | "half-open" | "open"): void;
  /** Time from a revocation to this instance having applied it (index updated, connections closed). */
  revocationPropagated(seconds: number): void;
  /** Whether the PKI store lost state its trust ledger recorded (Postern fails closed meanwhile). */
  pkiStateLost(lost: boolean): void;
  /** When the CA, the CRL's nextUpdate and the earliest issued certificate expire (ms since epoch); exported as seconds until then. */
  expiresAt(what: "ca" | "crl" | "earliest_certificate", atMs: number): void;
}

export const noopRecorder: MetricsRecorder = {
  request() {},
  observeSeconds() {},
  handshake() {},
  handshakeFailure() {},
  connectionOpened() {},
  connectionClosed() {},
  redisAvailable() {},
  certificateIssued() {},
  certificateRevoked() {},
  expiresAt() {},
  pkiStateLost() {},
  backendRequest() {},
  revocationPropagated() {},
  breakerState() {},
};
