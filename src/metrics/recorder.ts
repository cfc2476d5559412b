/**
 * What the rest of Postern reports. Only `prometheus.ts` knows prom-client; everything else
 * depends on this port, and tests may pass `noopRecorder`.
 */
export type HandshakeFailure = "no_cert" | "unknown_ca" | "expired" | "revoked" | "not_yet_valid" | "timeout" | "protocol" | "rate_limited" | "other";

/** Why a connection was refused before it could send a request: a connection cap was reached. */
export type ConnectionRefusal = "address_limit" | "total_limit" | "identity_limit" | "anonymous_limit";

/** Why the gateway ended a live connection on its own. */
export type ConnectionEnd = "expired" | "revoked";

/** Why an embedded-mode write failed: ENOSPC/EDQUOT, EIO, a write that made no progress, anything else. */
export type StorageFailure = "no_space" | "io_error" | "no_progress" | "other";

/** What a reload failed on: a part of the TLS material (the file it names), or the configuration file. */
export type ReloadFailure = "server_certificate" | "server_key" | "ca_bundle" | "config";

/** What a reload applied: the TLS material (server certificate, key, CA bundle) or the configuration. */
export type ReloadKind = "tls" | "config";

/** The EST (RFC 7030) operations Postern serves. */
export type EstOperation = "cacerts" | "simpleenroll" | "simplereenroll" | "csrattrs" | "serverkeygen";

export type TimedStage = "request" | "verify" | "replay_claim" | "forward";

export interface MetricsRecorder {
  /** One finished request on the data plane: the route name ("none" if unmatched) and the outcome code ("accepted" or an error code). */
  request(route: string, outcome: string, status: number): void;
  observeSeconds(stage: TimedStage, seconds: number): void;
  handshake(): void;
  handshakeFailure(reason: HandshakeFailure): void;
  connectionOpened(): void;
  connectionClosed(): void;
  connectionRefused(reason: ConnectionRefusal): void;
  /** A live connection the gateway closed because its certificate expired or was revoked. */
  connectionEnded(reason: ConnectionEnd): void;
  /** A connection cut because its request (or its header section) did not arrive in time. */
  requestTimedOut(): void;
  /** An error no handler caught; the process logged it and kept serving. */
  uncaughtError(): void;
  redisAvailable(up: boolean): void;
  certificateIssued(kind: "issued" | "renewed", notAfterMs: number): void;
  certificateRevoked(reason: string): void;
  /** One EST request: the operation and its outcome ("ok" or an error code). */
  estRequest(operation: EstOperation, outcome: string): void;
  /** One hand-over to a backend: outcome "ok", "error", "timeout", "rejected" (breaker open). */
  backendRequest(backend: string, outcome: "ok" | "error" | "timeout" | "rejected", seconds: number): void;
  /** A backend's circuit breaker state: 0 closed, 1 half-open, 2 open. */
  breakerState(backend: string, state: "closed" | "half-open" | "open"): void;
  /** Time from a revocation to this instance having applied it (index updated, connections closed). */
  revocationPropagated(seconds: number): void;
  /** One batch of embedded-mode writes that failed and was rolled back (nothing of it was stored). */
  storageFailure(failure: StorageFailure): void;
  /** Whether embedded-mode storage takes writes (false from a failed batch until a write or a probe succeeds). */
  storageUp(up: boolean): void;
  /** Whether the PKI store lost state its trust ledger recorded (Postern fails closed meanwhile). */
  pkiStateLost(lost: boolean): void;
  /** When the CA, the CRL's nextUpdate and the earliest issued certificate expire (ms since epoch); exported as seconds until then. */
  expiresAt(what: "ca" | "crl" | "earliest_certificate" | "server_certificate", atMs: number): void;
  /** A reload that was refused: the running state stays. */
  reloadFailed(what: ReloadFailure): void;
  /** A reload that applied something new. */
  reloaded(what: ReloadKind): void;
  /** The server certificate new handshakes get now (serial, notAfter). */
  servingCertificate(serial: string, notAfterMs: number): void;
  /** How many issued certificates have expired without being revoked (they no longer count in `earliest_certificate`). */
  certificatesExpired(count: number): void;
}

export const noopRecorder: MetricsRecorder = {
  request() {},
  observeSeconds() {},
  handshake() {},
  handshakeFailure() {},
  connectionOpened() {},
  connectionClosed() {},
  connectionRefused() {},
  connectionEnded() {},
  requestTimedOut() {},
  uncaughtError() {},
  redisAvailable() {},
  certificateIssued() {},
  certificateRevoked() {},
  estRequest() {},
  expiresAt() {},
  certificatesExpired() {},
  pkiStateLost() {},
  backendRequest() {},
  revocationPropagated() {},
  breakerState() {},
  storageFailure() {},
  storageUp() {},
  reloadFailed() {},
  reloaded() {},
  servingCertificate() {},
};
