import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { HandshakeFailure, MetricsRecorder, TimedStage } from "./recorder.js";

/** Prometheus metrics, on a private registry. Metric names are API: prefix `postern_`. */
export class PrometheusRecorder implements MetricsRecorder {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  private readonly requests: Counter<"route" | "outcome" | "status">;
  private readonly durations: Record<TimedStage, Histogram>;
  private readonly handshakes: Counter;
  private readonly handshakeFailures: Counter<"reason">;
  private readonly connections: Gauge;
  private redisUp: Gauge | undefined;
  private readonly certificates: Counter<"kind">;
  private readonly revocations: Counter<"reason">;
  private readonly expiries = new Map<string, number>();
  private readonly backendDuration: Histogram<"backend" | "outcome">;
  private readonly breaker: Gauge<"backend">;
  private readonly propagation: Histogram;
  private readonly stateLost: Gauge;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: "postern_" });
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
    const expiries = this.expiries;
    new Gauge({
      name: "postern_expiry_seconds",
      help: "Seconds until expiry: what=ca|crl|earliest_certificate",
      labelNames: ["what"],
      registers,
      // Computed at scrape time, so the countdown is current between updates.
      collect() {
        for (const [what, atMs] of expiries) this.set({ what }, (atMs - Date.now()) / 1000);
      },
    });
    this.backendDuration = new Histogram({
      name: "postern_backend_duration_seconds",
      help: "Backend hand-overs by backend and outcome (ok, error, timeout, rejected)",
      labelNames: ["backend", "outcome"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.propagation = new Histogram({
      name: "postern_revocation_propagation_seconds",
      help: "Time from a revocation to this instance refusing the certificate and closing its live connections",
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60],
      registers,
    });
    this.stateLost = new Gauge({
      name: "postern_pki_state_lost",
      help: "1 while the PKI store lacks certificates or revocations its trust ledger recorded (Postern refuses until restored)",
      registers,
    });
    this.stateLost.set(0);
    this.breaker = new Gauge({
      name: "postern_backend_breaker_state",
      help: "Circuit breaker state per backend: 0 closed, 1 half-open, 2 open",
      labelNames: ["backend"],
      registers,
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
  /** The gauge exists only once Redis is in use, so embedded mode never reports Redis down. */
  redisAvailable(up: boolean): void {
    this.redisUp ??= new Gauge({ name: "postern_redis_up", help: "1 when Redis answers, 0 when not (absent in embedded mode)", registers: [this.registry] });
    this.redisUp.set(up ? 1 : 0);
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
  expiresAt(what: "ca" | "crl" | "earliest_certificate", atMs: number): void {
    this.expiries.set(what, atMs);
  }

  /** The exposition text. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
