/**
 * Generator side of the keep-alive phases: distinct pre-signed messages over a fixed set of
 * keep-alive mTLS connections (the SDK's undici pool), either as fast as the server answers
 * (closed loop) or at a fixed rate (open loop, latency counted from each message's scheduled
 * send time, so a stalled server cannot hide its queue).
 */
import { randomBytes } from "node:crypto";
import { PosternClient, type PreparedMessage } from "../../src/client/index.js";
import { prepareMessages } from "./messages.js";
import type { ClientMaterial, PhaseResult, TargetAddress } from "./protocol.js";
import { percentile, summarizeLatencies } from "./stats.js";

export interface KeepAliveOptions {
  messages: number;
  warmMessages: number;
  connections: number;
  bodyBytes: number;
  ratePerSecond?: number;
}

/** A prepared keep-alive phase: `run` sends the timed messages, `close` drops the connections. */
export interface PreparedPhase {
  run(): Promise<PhaseResult>;
  close(): Promise<void>;
}

/** Signs every message, opens `connections` connections and warms them (and the server) up. */
export async function prepareKeepAlive(material: ClientMaterial, target: TargetAddress, options: KeepAliveOptions): Promise<PreparedPhase> {
  const client = new PosternClient({
    url: `https://${target.host}:${target.port}`,
    cert: material.certPem,
    key: material.keyPem,
    ca: material.caPem,
    attempts: 1,
    connections: options.connections,
  });
  const run = randomBytes(6).toString("hex");
  const all = prepareMessages(client, target.path, run, options.warmMessages + options.messages, options.bodyBytes);
  const warm = all.slice(0, options.warmMessages);
  const timed = all.slice(options.warmMessages);
  const warmResult = await closedLoop(client, warm, options.connections);
  if (warmResult.failed > 0) {
    await client.close();
    throw new Error(`${target.name}: warm-up failed: ${warmResult.firstFailure}`);
  }
  return {
    run: () => (options.ratePerSecond ? openLoop(client, timed, options.ratePerSecond) : closedLoop(client, timed, options.connections)),
    close: () => client.close(),
  };
}

interface Tally {
  latenciesMs: Float64Array;
  completed: number;
  failed: number;
  firstFailure?: string;
}

async function sendOne(client: PosternClient, message: PreparedMessage, sinceMs: number, index: number, tally: Tally): Promise<void> {
  try {
    const answer = await client.dispatch(message);
    tally.latenciesMs[index] = performance.now() - sinceMs;
    if (answer.status === 202) tally.completed += 1;
    else {
      tally.failed += 1;
      tally.firstFailure ??= `status ${answer.status} ${JSON.stringify(answer.body).slice(0, 200)}`;
    }
  } catch (error) {
    tally.latenciesMs[index] = performance.now() - sinceMs;
    tally.failed += 1;
    tally.firstFailure ??= String((error as Error).message ?? error);
  }
}

function result(tally: Tally, startedMs: number, cpu: NodeJS.CpuUsage): PhaseResult {
  const used = process.cpuUsage(cpu);
  return {
    completed: tally.completed,
    failed: tally.failed,
    ...(tally.firstFailure ? { firstFailure: tally.firstFailure } : {}),
    elapsedSeconds: (performance.now() - startedMs) / 1000,
    generatorCpuSeconds: (used.user + used.system) / 1e6,
    latency: summarizeLatencies(tally.latenciesMs),
  };
}

/** `connections` workers, each sending its next message as soon as the previous one is answered. */
async function closedLoop(client: PosternClient, messages: PreparedMessage[], connections: number): Promise<PhaseResult> {
  const tally: Tally = { latenciesMs: new Float64Array(messages.length), completed: 0, failed: 0 };
  const cpu = process.cpuUsage();
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      for (let i = next++; i < messages.length; i = next++) await sendOne(client, messages[i]!, performance.now(), i, tally);
    }),
  );
  return result(tally, started, cpu);
}

/** Message i is due at start + i / rate, whatever happened to the ones before it. */
async function openLoop(client: PosternClient, messages: PreparedMessage[], ratePerSecond: number): Promise<PhaseResult> {
  const tally: Tally = { latenciesMs: new Float64Array(messages.length), completed: 0, failed: 0 };
  const cpu = process.cpuUsage();
  const started = performance.now();
  const intervalMs = 1000 / ratePerSecond;
  const inFlight: Array<Promise<void>> = [];
  const lagsMs = new Float64Array(messages.length);
  let i = 0;
  while (i < messages.length) {
    const now = performance.now();
    for (; i < messages.length && started + i * intervalMs <= now; i++) {
      lagsMs[i] = performance.now() - (started + i * intervalMs);
      inFlight.push(sendOne(client, messages[i]!, started + i * intervalMs, i, tally));
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(inFlight);
  return { ...result(tally, started, cpu), sendLagP99Ms: percentile(lagsMs.sort(), 99) };
}
