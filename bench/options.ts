/**
 * `npm run bench -- [section...] [flags]`: which sections run and the gateway section's load.
 * Pure (tested in test/bench/): a bad flag is an error that names it.
 */
import { parseArgs } from "node:util";
import { KEY_ALGORITHMS, type KeyAlgorithm } from "../src/pki/keys/keys.js";

export const SECTIONS = ["signing", "sealed", "gateway", "redis", "pki", "cli"] as const;
export type SectionName = (typeof SECTIONS)[number];

export const TARGETS = ["bare", "nginx", "embedded", "workers2", "redis"] as const;
export type TargetName = (typeof TARGETS)[number];

export interface GatewayBenchOptions {
  /** Timed messages per keep-alive run. */
  messages: number;
  /** Keep-alive connections of the generator. */
  connections: number;
  bodyBytes: number;
  /** The client key type, which decides the RFC 9421 algorithm (P-256: ecdsa-p256-sha256). */
  algorithm: KeyAlgorithm;
  targets: TargetName[];
  /** Runs of each keep-alive and handshake phase, interleaved over the targets. */
  repeats: number;
  /** Handshakes per handshake run (full, then resumed). */
  handshakes: number;
  idleConnections: number;
  redisUrl: string;
  /** Where Postern's server processes write V8 CPU profiles (`--cpu-prof`), when set. */
  cpuProfDir?: string;
}

export interface BenchArgs {
  sections: SectionName[];
  gateway: GatewayBenchOptions;
}

export const USAGE = `npm run bench -- [signing] [sealed] [gateway] [redis] [pki] [cli] [flags]    (all sections when none is named)
gateway flags:
  --messages N            timed messages per keep-alive run (default 8000)
  --connections N         keep-alive mTLS connections (default 32)
  --body-bytes N          JSON body size (default 1024)
  --algorithm A           client key: ${KEY_ALGORITHMS.join(", ")} (default P-256)
  --only T[,T...]         targets: ${TARGETS.join(", ")} (default all; ratios need bare;
                          workers2: embedded mode with workers: 2, on every core, not pinned)
  --repeats N             runs of each keep-alive and handshake phase (default 3)
  --handshakes N          handshakes per handshake run (default 300)
  --idle-connections N    idle connections for the memory phase (default 2000; 0 skips it;
                          Redis mode skips it when embedded runs: same TLS and HTTP code)
  --redis-url URL         Redis for Redis mode (default POSTERN_TEST_REDIS_URL or redis://127.0.0.1:6379)
  --cpu-prof DIR          Postern's server processes write V8 CPU profiles into DIR (open in Chrome DevTools)`;

/** A command line the bench cannot run; `argument` names the flag (e.g. "--messages") or "section". */
export class BenchUsageError extends Error {
  constructor(
    readonly argument: string,
    message: string,
  ) {
    super(message);
    this.name = "BenchUsageError";
  }
}

function positiveInt(flag: string, text: string | undefined, fallback: number, min = 1): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new BenchUsageError(`--${flag}`, `--${flag} must be an integer >= ${min}, got ${JSON.stringify(text)}`);
  return value;
}

function parseFlags(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      messages: { type: "string" },
      connections: { type: "string" },
      "body-bytes": { type: "string" },
      algorithm: { type: "string" },
      only: { type: "string" },
      repeats: { type: "string" },
      handshakes: { type: "string" },
      "idle-connections": { type: "string" },
      "redis-url": { type: "string" },
      "cpu-prof": { type: "string" },
    },
  });
}

/**
 * Parses the bench's command line.
 * @throws BenchUsageError naming the flag, section or target that is not valid.
 */
export function parseBenchArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = {}): BenchArgs {
  let parsed: ReturnType<typeof parseFlags>;
  try {
    parsed = parseFlags(argv);
  } catch (error) {
    throw new BenchUsageError(/'(--[a-z-]+)/.exec((error as Error).message)?.[1] ?? "flags", (error as Error).message);
  }
  const { values, positionals } = parsed;
  for (const name of positionals) {
    if (!(SECTIONS as readonly string[]).includes(name)) throw new BenchUsageError("section", `unknown section ${JSON.stringify(name)}: one of ${SECTIONS.join(", ")}`);
  }
  const algorithm = values.algorithm === undefined ? "P-256" : KEY_ALGORITHMS.find((a) => a.toLowerCase() === values.algorithm!.toLowerCase());
  if (!algorithm) throw new BenchUsageError("--algorithm", `--algorithm must be one of ${KEY_ALGORITHMS.join(", ")}, got ${JSON.stringify(values.algorithm)}`);
  const targets = values.only === undefined ? [...TARGETS] : values.only.split(",").map((t) => t.trim()).filter((t) => t !== "");
  for (const target of targets) {
    if (!(TARGETS as readonly string[]).includes(target)) throw new BenchUsageError("--only", `--only: unknown target ${JSON.stringify(target)}: one of ${TARGETS.join(", ")}`);
  }
  if (targets.length === 0) throw new BenchUsageError("--only", "--only names no target");
  return {
    sections: positionals.length === 0 ? [...SECTIONS] : (positionals as SectionName[]),
    gateway: {
      messages: positiveInt("messages", values.messages, 8000),
      connections: positiveInt("connections", values.connections, 32),
      bodyBytes: positiveInt("body-bytes", values["body-bytes"], 1024),
      algorithm,
      targets: TARGETS.filter((t) => targets.includes(t)),
      repeats: positiveInt("repeats", values.repeats, 3),
      handshakes: positiveInt("handshakes", values.handshakes, 300),
      idleConnections: positiveInt("idle-connections", values["idle-connections"], 2000, 0),
      redisUrl: values["redis-url"] ?? env["POSTERN_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379",
      ...(values["cpu-prof"] !== undefined ? { cpuProfDir: values["cpu-prof"] } : {}),
    },
  };
}
