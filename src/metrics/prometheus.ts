import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { POSTERN_VERSION } from "../version.js";
import type { ConnectionEnd, ConnectionRefusal, EstOperation, HandshakeFailure, MetricsRecorder, ReloadFailure, ReloadKind, StorageFailure, TimedStage } from "./recorder.js";
import { TrafficHistory } from "./traffic-history.js";

/** The labels of `postern_build_info`. */
export interface BuildInfo {
  /** Postern's version (package.json). */
  version: string;
  /** The Node.js version running it, as `process.version` ("v20.20.2"). */
  node: string;
}

/**
 * prom-client's default process metrics under the `postern_` prefix, less its gauges named
 * `*_total` (`nodejs_active_handles_total`, `_requests_total`, `_resources_total`): the suffix
 * is reserved for counters, and `promtool check metrics` fails the whole exposition on them
 * (exit 3). Nothing is lost: each equals the sum of its per-type twin
 * (`postern_nodejs_active_handles{type}`, ...), which stays.
 */
function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry, prefix: "postern_" });
  for (const metric of registry.getMetricsAsArray()) {
    // By class, not by `metric.type`: prom-client's typings declare a numeric enum for it, but
    // the runtime value is a string.
    if (metric.name.endsWith("_total") && !(metric instanceof Counter)) registry.removeSingleMetric(metric.name);
  }
}

/**
 * Prometheus metrics, on a private registry. Metric names are API: prefix `postern_`. Every
 * family passes `promtool check metrics` (test/metrics/prometheus-exposition.test.ts).
 */
export class PrometheusRecorder implements MetricsRecorder {
  readonly registry = new Registry();
  /** The last hour of data-plane outcomes per minute (the console's charts). */
  readonly traffic = new TrafficHistory();
  readonly contentType = this.registry.contentType;
  private readonly requests: Counter<"route" | "outcome" | "status">;
  private readonly durations: Record<TimedStage, Histogram>;
  private readonly handshakes: Counter;
  private readonly handshakeFailures: Counter<"reason">;
  private readonly connections: Gauge;
  private redisUp: Gauge | undefined;
  private readonly certificates: Counter<"kind">;
  private readonly revocations: Counter<"reason">;
  private readonly est: Counter<"operation" | "outcome">;
  private readonly expiries = new Map<string, number>();
  private readonly backendDuration: Histogram<"backend" | "outcome">;
  private readonly breaker: Gauge<"backend">;
  private readonly propagation: Histogram;
  private readonly refusedConnections: Counter<"reason">;
  private readonly endedConnections: Counter<"reason">;
  private readonly requestTimeouts: Counter;
  private readonly uncaught: Counter;
  private readonly storageFailures: Counter<"reason">;
  private storageAvailable: Gauge | undefined;
  private readonly stateLost: Gauge;
  private readonly expiredCertificates: Gauge;
  private readonly reloadFailures: Counter<"what">;
  private readonly reloads: Counter<"what">;
  private readonly serverCertificate: Gauge<"serial" | "not_after">;
  private workerRestarts: Counter<"reason"> | undefined;
  private liveWorkers: Gauge | undefined;
  /** The cluster workers' registries (as `snapshot()` gives them), merged into this one's scrape. */
  private peers: (() => Promise<unknown[]>) | undefined;

  /** `build` defaults to this package's version and the running Node.js. */
  constructor(options: { defaultMetrics?: boolean; build?: BuildInfo } = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics ?? true) collectProcessMetrics(this.registry);
    // The usual *_info pattern: constant 1, so `* on (instance) group_left (version)` joins the
    // version onto any series, and a rollout shows as two label sets side by side.
    new Gauge({
      name: "postern_build_info",
      help: "Always 1; the labels name the running Postern version and Node.js version",
      labelNames: ["version", "node"],
      registers,
      aggregator: "first",
    }).set(options.build ?? { version: POSTERN_VERSION, node: process.version }, 1);
    this.requests = new Counter({
      name: "postern_requests_total",
      help: "Data-plane requests by route and outcome code",
      labelNames: ["route", "outcome", "status"],
      registers,
    });
    const histogram = (stage: TimedStage, help: string) =>
      new Histogram({
        name: `postern_${stage}_duration_seconds`,
        help,
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
        registers,
      });
    this.durations = {
      request: histogram("request", "Whole data-plane request handling time"),
      verify: histogram("verify", "Content-Digest and signature verification time"),
      replay_claim: histogram("replay_claim", "Nonce claim (and enqueue, for stream backends) time"),
      forward: histogram("forward", "Time spent handing a message to its backend"),
    };
    this.handshakes = new Counter({ name: "postern_tls_handshakes_total", help: "Completed and accepted mTLS handshakes", registers });
    this.handshakeFailures = new Counter({
      name: "postern_tls_handshake_failures_total",
      help: "Refused or failed TLS handshakes by reason",
      labelNames: ["reason"],
      registers,
    });
    this.connections = new Gauge({ name: "postern_connections", help: "Live data-plane TLS connections", registers });
    this.certificates = new Counter({
      name: "postern_certificates_total",
      help: "Certificates issued or renewed",
      labelNames: ["kind"],
      registers,
    });
    this.revocations = new Counter({
      name: "postern_certificates_revoked_total",
      help: "Certificates revoked by reason",
      labelNames: ["reason"],
      registers,
    });
    this.est = new Counter({
      name: "postern_est_requests_total",
      help: "EST (RFC 7030) requests by operation and outcome (ok or an error code)",
      labelNames: ["operation", "outcome"],
      registers,
    });
    const expiries = this.expiries;
    new Gauge({
      name: "postern_expiry_seconds",
      help: "Seconds until expiry: what=ca|crl|earliest_certificate (the earliest issued certificate that is neither expired nor revoked)|server_certificate",
      labelNames: ["what"],
      registers,
      aggregator: "min",
      // Computed at scrape time, so the countdown is current between updates.
      collect() {
        for (const [what, atMs] of expiries) this.set({ what }, (atMs - Date.now()) / 1000);
      },
    });
    this.expiredCertificates = new Gauge({
      name: "postern_certificates_expired",
      help: "Issued certificates that have expired without being revoked (not counted in postern_expiry_seconds{what=\"earliest_certificate\"})",
      registers,
    });
    this.backendDuration = new Histogram({
      name: "postern_backend_duration_seconds",
      help: "Backend hand-overs by backend and outcome (ok, error, timeout, rejected)",
      labelNames: ["backend", "outcome"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.reloadFailures = new Counter({
      name: "postern_reload_failures_total",
      help: "Reloads refused, the running state kept: what=server_certificate|server_key|ca_bundle|config",
      labelNames: ["what"],
      registers,
    });
    // Present at 0 from the start, so an alert on increase() sees the first failure.
    for (const what of ["server_certificate", "server_key", "ca_bundle", "config"] as const) this.reloadFailures.inc({ what }, 0);
    this.reloads = new Counter({ name: "postern_reloads_total", help: "Reloads that applied new material: what=tls|config", labelNames: ["what"], registers });
    this.serverCertificate = new Gauge({
      name: "postern_server_certificate_info",
      help: "Always 1; the labels name the server certificate new handshakes get (serial, notAfter)",
      labelNames: ["serial", "not_after"],
      registers,
    });
    this.propagation = new Histogram({
      name: "postern_revocation_propagation_seconds",
      help: "Time from a revocation to this instance refusing the certificate and closing its live connections",
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60],
      registers,
    });
    this.refusedConnections = new Counter({
      name: "postern_connections_refused_total",
      help: "Connections refused at a connection cap: address_limit, total_limit, identity_limit, anonymous_limit",
      labelNames: ["reason"],
      registers,
    });
    this.endedConnections = new Counter({
      name: "postern_connections_ended_total",
      help: "Live connections closed by the gateway because the certificate expired or was revoked",
      labelNames: ["reason"],
      registers,
    });
    this.requestTimeouts = new Counter({
      name: "postern_request_timeouts_total",
      help: "Connections cut because a request or its header section did not arrive in time",
      registers,
    });
    this.uncaught = new Counter({
      name: "postern_uncaught_errors_total",
      help: "Errors no handler caught; logged, and the process kept serving",
      registers,
    });
    this.storageFailures = new Counter({
      name: "postern_storage_failures_total",
      help: "Embedded-mode write batches that failed and were rolled back, by reason (no_space, io_error, no_progress, other)",
      labelNames: ["reason"],
      registers,
    });
    this.stateLost = new Gauge({
      name: "postern_pki_state_lost",
      help: "1 while the PKI store lacks certificates or revocations its trust ledger recorded (Postern refuses until restored)",
      registers,
      aggregator: "max",
    });
    this.stateLost.set(0);
    this.breaker = new Gauge({
      name: "postern_backend_breaker_state",
      help: "Circuit breaker state per backend: 0 closed, 1 half-open, 2 open",
      labelNames: ["backend"],
      registers,
      aggregator: "max",
    });
  }

  revocationPropagated(seconds: number): void {
    this.propagation.observe(Math.max(0, seconds));
  }
  backendRequest(backend: string, outcome: "ok" | "error" | "timeout" | "rejected", seconds: number): void {
    this.backendDuration.observe({ backend, outcome }, seconds);
  }
  breakerState(backend: string, state: "closed" | "half-open" | "open"): void {
    this.breaker.set({ backend }, state === "closed" ? 0 : state === "half-open" ? 1 : 2);
  }

  request(route: string, outcome: string, status: number): void {
    this.requests.inc({ route, outcome, status: String(status) });
    this.traffic.record(outcome);
  }
  estRequest(operation: EstOperation, outcome: string): void {
    this.est.inc({ operation, outcome });
  }
  observeSeconds(stage: TimedStage, seconds: number): void {
    this.durations[stage].observe(seconds);
  }
  handshake(): void {
    this.handshakes.inc();
  }
  handshakeFailure(reason: HandshakeFailure): void {
    this.handshakeFailures.inc({ reason });
  }
  connectionOpened(): void {
    this.connections.inc();
  }
  connectionClosed(): void {
    this.connections.dec();
  }
  connectionRefused(reason: ConnectionRefusal): void {
    this.refusedConnections.inc({ reason });
  }
  connectionEnded(reason: ConnectionEnd): void {
    this.endedConnections.inc({ reason });
  }
  requestTimedOut(): void {
    this.requestTimeouts.inc();
  }
  uncaughtError(): void {
    this.uncaught.inc();
  }
  /** The gauge exists only once Redis is in use, so embedded mode never reports Redis down. */
  redisAvailable(up: boolean): void {
    this.redisUp ??= new Gauge({ name: "postern_redis_up", help: "1 when Redis answers, 0 when not (absent in embedded mode)", registers: [this.registry], aggregator: "min" });
    this.redisUp.set(up ? 1 : 0);
  }
  storageFailure(failure: StorageFailure): void {
    this.storageFailures.inc({ reason: failure });
  }
  /** The gauge exists only once embedded storage is in use, so Redis mode never reports it. */
  storageUp(up: boolean): void {
    this.storageAvailable ??= new Gauge({
      name: "postern_storage_up",
      help: "1 while embedded-mode storage takes writes, 0 from a failed write until a write or probe succeeds (absent in Redis mode)",
      registers: [this.registry],
      aggregator: "min",
    });
    this.storageAvailable.set(up ? 1 : 0);
  }
  certificateIssued(kind: "issued" | "renewed", notAfterMs: number): void {
    this.certificates.inc({ kind });
    const earliest = this.expiries.get("earliest_certificate");
    if (earliest === undefined || notAfterMs < earliest) this.expiries.set("earliest_certificate", notAfterMs);
  }
  certificateRevoked(reason: string): void {
    this.revocations.inc({ reason });
  }
  pkiStateLost(lost: boolean): void {
    this.stateLost.set(lost ? 1 : 0);
  }
  expiresAt(what: "ca" | "crl" | "earliest_certificate" | "server_certificate", atMs: number): void {
    this.expiries.set(what, atMs);
  }
  certificatesExpired(count: number): void {
    this.expiredCertificates.set(count);
  }
  reloadFailed(what: ReloadFailure): void {
    this.reloadFailures.inc({ what });
  }
  reloaded(what: ReloadKind): void {
    this.reloads.inc({ what });
  }
  /** One series at a time: the previous certificate's goes when another is served. */
  servingCertificate(serial: string, notAfterMs: number): void {
    this.serverCertificate.reset();
    this.serverCertificate.set({ serial, not_after: new Date(notAfterMs).toISOString() }, 1);
    this.expiries.set("server_certificate", notAfterMs);
  }

  /** A cluster worker replaced after it exited (`crash`: without being told to stop). Primary only. */
  workerReplaced(reason: "crash" | "exit"): void {
    this.workerRestarts ??= new Counter({
      name: "postern_worker_restarts_total",
      help: "Cluster workers replaced after they died: crash (a signal or a non-zero exit), exit (exit 0 without being told)",
      labelNames: ["reason"],
      registers: [this.registry],
    });
    this.workerRestarts.inc({ reason });
  }

  /** Cluster workers serving the data listener now. Primary only; absent without workers. */
  workersLive(count: number): void {
    this.liveWorkers ??= new Gauge({ name: "postern_workers", help: "Cluster workers serving the data listener now (absent with workers: 1)", registers: [this.registry] });
    this.liveWorkers.set(count);
  }

  /** This process's metrics as data (prom-client's JSON form), for the cluster primary to merge. */
  snapshot(): Promise<unknown> {
    return this.registry.getMetricsAsJSON();
  }

  /**
   * Makes `metrics()` one scrape for the whole cluster: this registry plus what `gather`
   * returns (each worker's `snapshot()`); counters and histograms add up, gauges follow their
   * aggregator (sum unless set: live connections add up, expiries take the earliest).
   */
  aggregateWith(gather: () => Promise<unknown[]>): void {
    this.peers = gather;
  }

  /** The exposition text. */
  async metrics(): Promise<string> {
    if (!this.peers) return this.registry.metrics();
    const [own, others] = await Promise.all([this.registry.getMetricsAsJSON(), this.peers()]);
    return AggregatorRegistry.aggregate([own, ...(others as object[])]).metrics();
  }
}
