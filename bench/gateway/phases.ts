/**
 * One measured phase: the generator prepares (signs, connects, warms up), the orchestrator reads
 * the server's process tree (and redis-server) from /proc, the generator runs the timed part,
 * the counters are read again. Nothing but serving falls between the two readings.
 */
import type { GeneratorRequest, PhaseResult } from "./protocol.js";
import type { LoadGenerator } from "./generator-client.js";
import { machineBusySeconds, sampleTree, type TreeSample } from "./proc.js";
import type { CommandStats, RedisSample } from "./redis-probe.js";
import type { Target } from "./setup.js";
import { slope } from "./stats.js";

export interface Measured {
  result: PhaseResult;
  /** CPU the server's process tree used in the timed part. */
  serverCpuSeconds: number;
  /** The server's resident memory after the timed part, connections still open. */
  serverRssBytes: number;
  redisCpuSeconds?: number;
  redisNetInputBytes?: number;
  /** redis-server's wake-ups in the timed part: messages per wake-up is how many it handled at once. */
  redisWakeUps?: number;
  /** Per Redis command: calls and microseconds (INFO commandstats) in the timed part. */
  redisCommands?: CommandStats;
  /**
   * CPU that every other process on the machine used during the timed part (machine busy time
   * minus server, generator and redis-server): how noisy the run was.
   */
  othersCpuSeconds?: number;
  /** Redis mode: redis-server's CPU and input per second in a quiet second before the run (other clients, health probes). */
  redisBackground?: { cpuSecondsPerSecond?: number; bytesPerSecond: number };
}

type PhaseRequest = Exclude<GeneratorRequest, { kind: "init" | "go" | "release" | "exit" }>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function sampleServer(target: Target): TreeSample {
  const sample = sampleTree(target.server.pid);
  if (!sample) throw new Error(`${target.label} (pid ${target.server.pid}) is gone; its log ends:\n${target.server.logTail()}`);
  return sample;
}

async function redisBackground(target: Target): Promise<Measured["redisBackground"]> {
  if (!target.redis) return undefined;
  const first = await target.redis.sample();
  const started = performance.now();
  await sleep(1000);
  const second = await target.redis.sample();
  const seconds = (performance.now() - started) / 1000;
  return {
    bytesPerSecond: (second.netInputBytes - first.netInputBytes) / seconds,
    ...(first.cpuSeconds !== undefined && second.cpuSeconds !== undefined ? { cpuSecondsPerSecond: (second.cpuSeconds - first.cpuSeconds) / seconds } : {}),
  };
}

/** What Redis spent between two samples: CPU, bytes in, wake-ups, and per-command calls and time. */
export function redisDelta(before: RedisSample | undefined, after: RedisSample | undefined): Pick<Measured, "redisCpuSeconds" | "redisNetInputBytes" | "redisCommands" | "redisWakeUps"> {
  if (!before || !after) return {};
  const commands: CommandStats = new Map();
  for (const [name, { calls, usec }] of after.commands) {
    const was = before.commands.get(name) ?? { calls: 0, usec: 0 };
    if (calls > was.calls) commands.set(name, { calls: calls - was.calls, usec: usec - was.usec });
  }
  return {
    redisNetInputBytes: after.netInputBytes - before.netInputBytes,
    redisCommands: commands,
    ...(before.cpuSeconds !== undefined && after.cpuSeconds !== undefined ? { redisCpuSeconds: after.cpuSeconds - before.cpuSeconds } : {}),
    ...(before.wakeUps !== undefined && after.wakeUps !== undefined ? { redisWakeUps: after.wakeUps - before.wakeUps } : {}),
  };
}

/** Runs one phase against `target` and returns what it cost the server (and Redis). */
export async function measurePhase(generator: LoadGenerator, target: Target, request: PhaseRequest, options: { redisBackground?: boolean } = {}): Promise<Measured> {
  const background = options.redisBackground ? await redisBackground(target) : undefined;
  await generator.prepare(request);
  try {
    const redisBefore = await target.redis?.sample();
    const machineBefore = machineBusySeconds();
    const before = sampleServer(target);
    const result = await generator.go();
    const after = sampleServer(target);
    const machineAfter = machineBusySeconds();
    const redisAfter = await target.redis?.sample();
    if (result.completed === 0) throw new Error(`${target.label}: nothing succeeded: ${result.firstFailure ?? "?"}`);
    const redis = redisDelta(redisBefore, redisAfter);
    const serverCpuSeconds = after.cpuSeconds - before.cpuSeconds;
    return {
      result,
      serverCpuSeconds,
      serverRssBytes: after.rssBytes,
      ...redis,
      ...(machineBefore !== undefined && machineAfter !== undefined
        ? { othersCpuSeconds: Math.max(0, machineAfter - machineBefore - serverCpuSeconds - result.generatorCpuSeconds - (redis.redisCpuSeconds ?? 0)) }
        : {}),
      ...(background ? { redisBackground: background } : {}),
    };
  } finally {
    await generator.release();
  }
}

export interface IdleMeasured {
  /** Connections open at the end. */
  connections: number;
  failed: number;
  firstFailure?: string;
  rssBeforeBytes: number;
  /** [open connections, server RSS bytes] after each step, settled. */
  steps: Array<[number, number]>;
}

/**
 * Opens `count` idle connections in `steps` equal steps and reads the server's RSS, settled,
 * before and after each. The memory an idle connection holds is the slope of RSS over the
 * steps after the first (the first also pays one-off growth: heap semispaces, JIT code, buffers);
 * a garbage collection between two readings shows as noise, which the slope over several damps.
 */
export async function measureIdle(generator: LoadGenerator, target: Target, count: number, steps = 4, settleMs = 1500): Promise<IdleMeasured> {
  const measured: IdleMeasured = { connections: 0, failed: 0, rssBeforeBytes: 0, steps: [] };
  try {
    await sleep(settleMs);
    measured.rssBeforeBytes = sampleServer(target).rssBytes;
    for (let step = 1; step <= steps; step++) {
      const chunk = Math.round((count * step) / steps) - Math.round((count * (step - 1)) / steps);
      await generator.prepare({ kind: "idle", target: target.address, count: chunk, concurrency: 16 });
      const result = await generator.go();
      measured.connections = result.completed;
      measured.failed += result.failed;
      if (result.firstFailure) measured.firstFailure ??= result.firstFailure;
      await sleep(settleMs);
      measured.steps.push([result.completed, sampleServer(target).rssBytes]);
    }
    return measured;
  } finally {
    await generator.release();
  }
}

/** KB of server RSS per idle connection: the slope over the steps after the first, else the plain delta. */
export function idleKbPerConnection(idle: IdleMeasured): number {
  const later = idle.steps.slice(1);
  const perByte = later.length >= 2 ? slope(later) : (idle.steps.at(-1)![1] - idle.rssBeforeBytes) / idle.connections;
  return perByte / 1024;
}

/** KB per idle connection from the RSS before the first step to after the last. */
export function idleKbPerConnectionTotal(idle: IdleMeasured): number {
  return (idle.steps.at(-1)![1] - idle.rssBeforeBytes) / 1024 / idle.connections;
}

/** Per unit, in microseconds. */
export function cpuMicrosPer(measured: Measured): number {
  return (measured.serverCpuSeconds * 1e6) / measured.result.completed;
}

export function perSecond(measured: Measured): number {
  return measured.result.completed / measured.result.elapsedSeconds;
}
