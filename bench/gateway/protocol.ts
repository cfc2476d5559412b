/**
 * What the bench orchestrator and its load generator (a separate process, see generator.ts) say
 * to each other over Node's IPC channel. Each phase is two steps, so the orchestrator can read
 * the server's CPU counters exactly around the timed part:
 *   phase request -> "ready" (messages signed, connections open and warm)
 *   "go"          -> "done" with the result (for "idle": connections open; "release" closes them)
 */
import type { LatencySummary } from "./stats.js";

/** The client certificate chain, its key and the CA bundle that signed the servers' certificates. */
export interface ClientMaterial {
  certPem: string;
  keyPem: string;
  caPem: string;
}

/** Where a server under test listens; `path` is the route messages are signed for. */
export interface TargetAddress {
  name: string;
  host: string;
  port: number;
  path: string;
}

export type GeneratorRequest =
  | { kind: "init"; client: ClientMaterial; bodyBytes: number; sourceAddresses: string[] }
  /** Distinct signed messages over `connections` keep-alive connections; open loop at `ratePerSecond` when given. */
  | { kind: "keep-alive"; target: TargetAddress; messages: number; warmMessages: number; connections: number; ratePerSecond?: number }
  /** A new connection per handshake; with `resume`, each offers the session ticket its previous connection got. */
  | { kind: "handshakes"; target: TargetAddress; count: number; concurrency: number; resume: boolean }
  /** Opens `count` more connections, one signed message each, and leaves them (and earlier ones) idle until "release". */
  | { kind: "idle"; target: TargetAddress; count: number; concurrency: number }
  | { kind: "go" }
  | { kind: "release" }
  | { kind: "exit" };

export interface PhaseResult {
  /** Operations that succeeded (202 answers, completed handshakes, open idle connections). */
  completed: number;
  failed: number;
  /** The first failure, for the report. */
  firstFailure?: string;
  elapsedSeconds: number;
  /** The generator's own CPU in the timed part, to tell when it, not the server, was the limit. */
  generatorCpuSeconds: number;
  latency?: LatencySummary;
  /**
   * Open loop: how late the generator itself sent messages behind their schedule (p99, ms). When
   * it is large the generator, not the server, made the latency.
   */
  sendLagP99Ms?: number;
  /** Handshakes that resumed a session. */
  resumed?: number;
  /** TLS version and cipher of the first connection. */
  cipher?: string;
}

export type GeneratorReply =
  | { kind: "ready" }
  | { kind: "done"; result: PhaseResult }
  | { kind: "failed"; message: string };
