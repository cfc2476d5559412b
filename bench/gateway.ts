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
import { median } from "./gateway/stats.js";

/** Source addresses the connection phases rotate over (the whole 127/8 is loopback on Linux). */
const SOURCE_ADDRESSES = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);
const HANDSHAKE_CONCURRENCY = 8;
const HALF_RATE_SECONDS = 5;
/**
 * V8 flags of the Node servers in the idle phase: the young generation held at 1 MB. Left to
 * itself, V8 grows it to tens of MB under the message each new connection sends, and that
 * growth (heap headroom for the message rate, not memory per connection) was 11 KB of Postern's
 * 74 KB slope per connection in a run here (bare Node's grows less: it allocates less per message).
 */
const IDLE_NODE_FLAGS = ["--max-semi-space-size=1"];

export async function benchGateway(options: GatewayBenchOptions): Promise<void> {
  const startedMs = performance.now();
  const say = (line = "") => process.stdout.write(`${line}\n`);
  /** A progress line, stamped with the seconds since the section started. */
  const progress = (line: string) => say(`[${((performance.now() - startedMs) / 1000).toFixed(0).padStart(4)} s] ${line}`);
  const loadAtStart = loadavg()[0] ?? Number.NaN;
  say("\n## gateway: what Postern's server process spends per message, handshake and idle connection");
  const main = ensureBuilt(say);
  const pinning = choosePinning();
  const dir = await mkdtemp(join(tmpdir(), "postern-bench-gateway-"));
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    const setup = await startTargets(options, { dir, main, pinning, cleanups, say: progress });
    const generator = await LoadGenerator.start(pinning.generatorCpu, { client: setup.client, bodyBytes: options.bodyBytes, sourceAddresses: SOURCE_ADDRESSES });
    cleanups.push(() => generator.stop());
    const results = new Map<TargetName, TargetResults>(setup.targets.map((target) => [target.name, { target, keepAlive: [], full: [], resumed: [] }]));
    const notes = [pinning.note, ...setup.notes];
    const dropped = new Set<TargetName>();

    /**
     * Runs `phase` for every target still in the run, one after the other. A server that exits
     * by itself (on a shared machine, something else may kill it) is restarted and its phase
     * run again, once; a second exit drops it from the rest of the run. Both go into the notes.
     */
    const each = async (what: string, phase: (r: TargetResults) => Promise<void>) => {
      for (const r of results.values()) {
        for (let attempt = 1; !dropped.has(r.target.name); attempt++) {
          try {
            await phase(r);
            break;
          } catch (error) {
            const exit = r.target.server.exited();
            if (exit === undefined) throw error;
            const note = `${r.target.label} exited (${exit}, not stopped by the bench) during ${what}: ${attempt === 1 ? "restarted, phase run again" : "dropped from the rest of the run"}`;
            notes.push(note);
            progress(note);
            if (attempt > 1) dropped.add(r.target.name);
            else await r.target.restart();
          }
        }
      }
    };

    // Idle connections first, while the servers hold little garbage to blur their RSS. Redis mode
    // (and a cluster) holds connections with the same code as embedded mode: measured only when embedded is not.
    if (options.idleConnections > 0) {
      await each("the idle phase", async (r) => {
        if ((r.target.name === "redis" || r.target.name === "workers2") && results.has("embedded")) return;
        await r.target.restart(IDLE_NODE_FLAGS);
        r.idle = await measureIdle(generator, r.target, options.idleConnections);
        progress(`idle  ${r.target.label}: ${r.idle.connections} connections, ${idleKbPerConnection(r.idle).toFixed(1)} KB RSS each`);
        // A fresh process for the message phases, so their RSS is not this phase's high-water mark.
        await r.target.restart();
      });
    }
    const warmMessages = Math.max(500, options.connections * 4);
    for (let run = 1; run <= options.repeats; run++) {
      await each(`keep-alive run ${run}`, async (r) => {
        const measured = await measurePhase(
          generator,
          r.target,
          { kind: "keep-alive", target: r.target.address, messages: options.messages, warmMessages, connections: options.connections },
          { redisBackground: r.target.redis !== undefined },
        );
        r.keepAlive.push(measured);
        progress(`keep-alive run ${run}/${options.repeats}  ${r.target.label}: ${cpuMicrosPer(measured).toFixed(0)} us/msg, ${perSecond(measured).toFixed(0)} msg/s`);
      });
    }
    await each("the half-rate phase", async (r) => {
      if (r.keepAlive.length === 0) return;
      // Half the max throughput, the median of the closed-loop runs: one lucky quiet run on a
      // shared machine would set a rate the server cannot hold a minute later.
      const ratePerSecond = Math.max(10, Math.round(median(r.keepAlive.map(perSecond)) / 2));
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
      progress(`half rate  ${r.target.label}: ${ratePerSecond} msg/s, p99 ${measured.result.latency?.p99Ms.toFixed(1)} ms`);
    });
    for (let run = 1; run <= options.repeats; run++) {
      await each(`handshake run ${run}`, async (r) => {
        for (const resume of [false, true]) {
          const list = resume ? r.resumed : r.full;
          // Run again after a restart: only what this run has not measured yet.
          if (list.length >= run) continue;
          const phase = await measurePhase(generator, r.target, { kind: "handshakes", target: r.target.address, count: options.handshakes, concurrency: HANDSHAKE_CONCURRENCY, resume });
          list.push(phase);
          progress(`handshakes run ${run}/${options.repeats}  ${r.target.label} ${resume ? "resumed" : "full"}: ${cpuMicrosPer(phase).toFixed(0)} us/handshake, ${perSecond(phase).toFixed(0)}/s`);
        }
      });
    }
    printGatewayReport(say, {
      options,
      results: [...results.values()],
      notes,
      clientLabel: setup.clientLabel,
      loadAtStart,
      elapsedSeconds: (performance.now() - startedMs) / 1000,
    });
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => say(`cleanup failed: ${(error as Error).message}`));
    await rm(dir, { recursive: true, force: true });
  }
}
