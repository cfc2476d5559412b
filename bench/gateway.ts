/**
 * The gateway section of `npm run bench`: what a message, a handshake and an idle connection
 * cost Postern's server process, against a bare Node mTLS server and nginx measured in the same
 * run. Every server runs in its own process on one core, the load generator in another process
 * on the other core; CPU comes from /proc for each server's whole process tree. See README
 * "Benchmarks" for what each number means.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import type { GatewayBenchOptions, TargetName } from "./options.js";
import { LoadGenerator } from "./gateway/generator-client.js";
import { cpuMicrosPer, idleKbPerConnection, measureIdle, measurePhase, perSecond } from "./gateway/phases.js";
import { choosePinning } from "./gateway/processes.js";
import { printGatewayReport, type TargetResults } from "./gateway/report.js";
import { startTargets } from "./gateway/setup.js";
import { ensureBuilt } from "./gateway/servers.js";
import { maximum } from "./gateway/stats.js";

/** Source addresses the connection phases rotate over (the whole 127/8 is loopback on Linux). */
const SOURCE_ADDRESSES = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);
const HANDSHAKE_CONCURRENCY = 8;
const HALF_RATE_SECONDS = 5;

export async function benchGateway(options: GatewayBenchOptions): Promise<void> {
  const say = (line = "") => process.stdout.write(`${line}\n`);
  const startedMs = performance.now();
  const loadAtStart = loadavg()[0] ?? Number.NaN;
  say("\n## gateway: what Postern's server process spends per message, handshake and idle connection");
  const main = ensureBuilt(say);
  const pinning = choosePinning();
  const dir = await mkdtemp(join(tmpdir(), "postern-bench-gateway-"));
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    const setup = await startTargets(options, { dir, main, pinning, cleanups, say });
    const generator = await LoadGenerator.start(pinning.generatorCpu, { client: setup.client, bodyBytes: options.bodyBytes, sourceAddresses: SOURCE_ADDRESSES });
    cleanups.push(() => generator.stop());
    const results = new Map<TargetName, TargetResults>(setup.targets.map((target) => [target.name, { target, keepAlive: [], full: [], resumed: [] }]));
    const each = (fn: (r: TargetResults) => Promise<void>) => [...results.values()].reduce((p, r) => p.then(() => fn(r)), Promise.resolve());

    // Idle connections first, while the servers hold little garbage to blur their RSS. Redis mode
    // holds connections with the same code as embedded mode: measured only when embedded is not.
    if (options.idleConnections > 0) {
      await each(async (r) => {
        if (r.target.name === "redis" && results.has("embedded")) return;
        r.idle = await measureIdle(generator, r.target, options.idleConnections);
        say(`  idle  ${r.target.label}: ${r.idle.connections} connections, ${idleKbPerConnection(r.idle).toFixed(1)} KB RSS each`);
      });
    }
    const warmMessages = Math.max(500, options.connections * 4);
    for (let run = 1; run <= options.repeats; run++) {
      await each(async (r) => {
        const measured = await measurePhase(
          generator,
          r.target,
          { kind: "keep-alive", target: r.target.address, messages: options.messages, warmMessages, connections: options.connections },
          { redisBackground: r.target.redis !== undefined },
        );
        r.keepAlive.push(measured);
        say(`  keep-alive run ${run}/${options.repeats}  ${r.target.label}: ${cpuMicrosPer(measured).toFixed(0)} us/msg, ${perSecond(measured).toFixed(0)} msg/s`);
      });
    }
    await each(async (r) => {
      const ratePerSecond = Math.max(10, Math.round(maximum(r.keepAlive.map(perSecond)) / 2));
      const messages = Math.min(options.messages, Math.max(200, Math.round(ratePerSecond * HALF_RATE_SECONDS)));
      const measured = await measurePhase(generator, r.target, {
        kind: "keep-alive",
        target: r.target.address,
        messages,
        warmMessages: options.connections * 2,
        connections: options.connections,
        ratePerSecond,
      });
      r.halfRate = { ratePerSecond, measured };
      say(`  half rate  ${r.target.label}: ${ratePerSecond} msg/s, p99 ${measured.result.latency?.p99Ms.toFixed(1)} ms`);
    });
    for (let run = 1; run <= options.repeats; run++) {
      await each(async (r) => {
        for (const resume of [false, true]) {
          const measured = await measurePhase(generator, r.target, { kind: "handshakes", target: r.target.address, count: options.handshakes, concurrency: HANDSHAKE_CONCURRENCY, resume });
          (resume ? r.resumed : r.full).push(measured);
          say(`  handshakes run ${run}/${options.repeats}  ${r.target.label} ${resume ? "resumed" : "full"}: ${cpuMicrosPer(measured).toFixed(0)} us/handshake, ${perSecond(measured).toFixed(0)}/s`);
        }
      });
    }
    printGatewayReport(say, {
      options,
      results: [...results.values()],
      notes: [pinning.note, ...setup.notes],
      clientLabel: setup.clientLabel,
      loadAtStart,
      elapsedSeconds: (performance.now() - startedMs) / 1000,
    });
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => say(`cleanup failed: ${(error as Error).message}`));
    await rm(dir, { recursive: true, force: true });
  }
}
