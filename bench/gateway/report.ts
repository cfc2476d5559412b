/**
 * The gateway section's printout: one table per phase (min and median over the runs, since the
 * machine may be shared), then the goals of the "Fast" issue next to what this run measured.
 * Ratios are Postern over the bare Node server measured in the same run, in separate processes.
 * Longer than most files: one small table builder per phase, kept together so the columns and
 * the README's description of them can be read side by side.
 */
import { cpus, release } from "node:os";
import type { GatewayBenchOptions, TargetName } from "../options.js";
import { cpuMicrosPer, idleKbPerConnection, idleKbPerConnectionTotal, perSecond, type IdleMeasured, type Measured } from "./phases.js";
import type { Target } from "./setup.js";
import { median, minimum } from "./stats.js";

export interface TargetResults {
  target: Target;
  keepAlive: Measured[];
  halfRate?: { ratePerSecond: number; measured: Measured };
  full: Measured[];
  resumed: Measured[];
  idle?: IdleMeasured;
}

export interface GatewayReport {
  options: GatewayBenchOptions;
  results: TargetResults[];
  notes: string[];
  clientLabel: string;
  loadAtStart: number;
  elapsedSeconds: number;
}

/** The goals of the "Fast" issue; `x` ratios are against the bare Node server. */
export const GOALS = {
  embeddedCpuRatio: 2.8,
  redisCpuRatio: 3.2,
  redisServerMicrosPerMessage: 40,
  p99AtHalfRateMs: 10,
  fullHandshakeRatio: 1.1,
  resumedOverFull: 0.3,
  idleConnectionKb: 40,
} as const;

/** Above this much CPU of other processes in the timed parts (in % of one CPU) the report says it was noisy. */
const NOISY_OTHERS_PERCENT = 25;

const f = (value: number | undefined, digits = 0): string => (value === undefined || !Number.isFinite(value) ? "-" : value.toFixed(digits));
const mb = (bytes: number) => f(bytes / 1024 / 1024, 1);

/** A plain-text table: first column left-aligned, the others right-aligned. */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** Server CPU per unit over the runs: [min, median, every run]. */
function cpuStats(runs: Measured[]): { min: number; median: number; runs: string } {
  const values = runs.map(cpuMicrosPer);
  return { min: minimum(values), median: median(values), runs: values.map((v) => f(v)).join("/") };
}

function generatorPercent(runs: Measured[]): number {
  return median(runs.map((m) => (100 * m.result.generatorCpuSeconds) / m.result.elapsedSeconds));
}

/** Median share of one CPU that other processes used during the timed parts (200 = both of 2 CPUs). */
function othersPercent(runs: Measured[]): number {
  return median(runs.flatMap((m) => (m.othersCpuSeconds === undefined ? [] : [(100 * m.othersCpuSeconds) / m.result.elapsedSeconds])));
}

function redisPerMessage(runs: Measured[]) {
  const per = (pick: (m: Measured) => number | undefined) =>
    runs.map((m) => pick(m)).filter((v): v is number => v !== undefined && Number.isFinite(v));
  return {
    cpu: per((m) => (m.redisCpuSeconds === undefined ? undefined : (m.redisCpuSeconds * 1e6) / m.result.completed)),
    bytes: per((m) => (m.redisNetInputBytes === undefined ? undefined : m.redisNetInputBytes / m.result.completed)),
    perWakeUp: per((m) => (m.redisWakeUps ? m.result.completed / m.redisWakeUps : undefined)),
    backgroundCpu: per((m) => (m.redisBackground?.cpuSecondsPerSecond === undefined ? undefined : (m.redisBackground.cpuSecondsPerSecond * m.result.elapsedSeconds * 1e6) / m.result.completed)),
    backgroundBytes: per((m) => (m.redisBackground === undefined ? undefined : (m.redisBackground.bytesPerSecond * m.result.elapsedSeconds) / m.result.completed)),
  };
}

/**
 * Redis commands per message in the run with the fewest calls of all (the least disturbed by
 * other clients): calls and microseconds of command time per message, top five by time.
 */
function commandsLine(runs: Measured[]): string {
  const quietest = runs
    .filter((m) => m.redisCommands)
    .sort((a, b) => total(a) - total(b))[0];
  if (!quietest?.redisCommands) return "";
  const n = quietest.result.completed;
  const top = [...quietest.redisCommands].sort((a, b) => b[1].usec - a[1].usec).slice(0, 5);
  return `Redis command time per message (INFO commandstats, quietest run; a script's inner commands count too): ${top
    .map(([name, { calls, usec }]) => `${name} ${f(calls / n, 2)} calls ${f(usec / n, 1)} us`)
    .join(", ")}`;
}

function total(m: Measured): number {
  return [...(m.redisCommands?.values() ?? [])].reduce((sum, c) => sum + c.calls, 0) / m.result.completed;
}

function keepAliveSection(results: TargetResults[], bare: TargetResults | undefined): string {
  const bareMedian = bare ? cpuStats(bare.keepAlive).median : Number.NaN;
  const rows = results.filter((r) => r.keepAlive.length > 0).map((r) => {
    const cpu = cpuStats(r.keepAlive);
    const rates = r.keepAlive.map(perSecond);
    const mid = [...r.keepAlive].sort((a, b) => cpuMicrosPer(a) - cpuMicrosPer(b))[r.keepAlive.length >> 1]!;
    return [
      r.target.label, f(cpu.min), f(cpu.median), cpu.runs, f(Math.max(...rates)), f(median(rates)),
      f(mid.result.latency?.p50Ms, 1), f(mid.result.latency?.p99Ms, 1), mb(median(r.keepAlive.map((m) => m.serverRssBytes))),
      f(generatorPercent(r.keepAlive)), f(othersPercent(r.keepAlive)), bare ? `${f(cpu.median / bareMedian, 2)}x` : "-",
    ];
  });
  let text = formatTable(
    ["server (own process)", "CPU us/msg min", "median", "runs", "msg/s max", "median", "p50 ms", "p99 ms", "RSS MB", "generator CPU %", "others CPU %", "vs bare"],
    rows,
  );
  const redis = results.find((r) => r.target.redis);
  if (redis) {
    const per = redisPerMessage(redis.keepAlive);
    text += "\n\n" + formatTable(
      ["Redis mode, per message", "min", "median", "runs", "quiet-second background (median)"],
      [
        ["redis-server CPU us/msg", f(minimum(per.cpu), 1), f(median(per.cpu), 1), per.cpu.map((v) => f(v)).join("/"), `${f(median(per.backgroundCpu), 1)} us/msg`],
        ["Redis bytes in per msg", f(minimum(per.bytes)), f(median(per.bytes)), per.bytes.map((v) => f(v)).join("/"), `${f(median(per.backgroundBytes))} B/msg`],
        // How many messages Redis handled per wake-up: its CPU per message falls as this grows (npm run bench -- redis).
        ["msgs per Redis wake-up", f(minimum(per.perWakeUp), 1), f(median(per.perWakeUp), 1), per.perWakeUp.map((v) => f(v, 1)).join("/"), ""],
      ],
    );
    text += `\n${commandsLine(redis.keepAlive)}`;
  }
  return text;
}

function halfRateSection(results: TargetResults[]): string {
  return formatTable(
    ["server", "rate msg/s", "messages", "p50 ms", "p99 ms", "max ms", "generator send lag p99 ms", "CPU us/msg", "others CPU %", "failed"],
    results.filter((r) => r.halfRate).map((r) => {
      const { ratePerSecond, measured } = r.halfRate!;
      const latency = measured.result.latency;
      return [r.target.label, f(ratePerSecond), f(measured.result.completed + measured.result.failed), f(latency?.p50Ms, 1), f(latency?.p99Ms, 1), f(latency?.maxMs, 1), f(measured.result.sendLagP99Ms, 1), f(cpuMicrosPer(measured)), f(othersPercent([measured])), f(measured.result.failed)];
    }),
  );
}

function handshakeSection(results: TargetResults[], bare: TargetResults | undefined): string {
  const bareFull = bare ? cpuStats(bare.full).median : Number.NaN;
  return formatTable(
    ["server", "TLS", "full: CPU us/hs min", "median", "per s", "gen CPU %", "resumed: CPU us/hs min", "median", "per s", "reused %", "resumed/full", "full vs bare"],
    results.map((r) => {
      const full = cpuStats(r.full);
      const resumed = cpuStats(r.resumed);
      const reused = r.resumed.reduce((n, m) => n + (m.result.resumed ?? 0), 0) / Math.max(1, r.resumed.reduce((n, m) => n + m.result.completed, 0));
      return [
        r.target.label, r.full[0]?.result.cipher ?? "?", f(full.min), f(full.median), f(median(r.full.map(perSecond))), f(generatorPercent(r.full)),
        f(resumed.min), f(resumed.median), f(median(r.resumed.map(perSecond))), f(100 * reused),
        `${f(resumed.median / full.median, 2)}x`, bare ? `${f(full.median / bareFull, 2)}x` : "-",
      ];
    }),
  );
}

function idleSection(results: TargetResults[]): string {
  return formatTable(
    ["server", "idle connections", "RSS before MB", "RSS after each step MB", "KB per connection (slope)", "(total delta)"],
    results.filter((r) => r.idle).map((r) => {
      const idle = r.idle!;
      return [
        r.target.label, f(idle.connections), mb(idle.rssBeforeBytes), idle.steps.map(([, rss]) => mb(rss)).join(" "),
        f(idleKbPerConnection(idle), 1), f(idleKbPerConnectionTotal(idle), 1),
      ];
    }),
  );
}

export interface GoalRow {
  metric: string;
  value?: number;
  unit: "x" | "us" | "ms" | "KB";
  goal: number;
  detail?: string;
  /** Why this run cannot judge the goal, though it shows the value. */
  unjudged?: string;
}

function goalRows(byName: Map<TargetName, TargetResults>): GoalRow[] {
  const bare = byName.get("bare");
  const rows: GoalRow[] = [];
  const ratio = (name: TargetName, pick: (r: TargetResults) => Measured[]) => {
    const target = byName.get(name);
    if (!target || !bare) return {};
    const t = cpuStats(pick(target));
    const b = cpuStats(pick(bare));
    return { value: t.median / b.median, detail: `${f(t.median)} / ${f(b.median)} us; min/min ${f(t.min / b.min, 2)}x` };
  };
  rows.push({ metric: "server CPU per message, Postern embedded / bare Node", unit: "x", goal: GOALS.embeddedCpuRatio, ...ratio("embedded", (r) => r.keepAlive) });
  rows.push({ metric: "server CPU per message, Postern Redis mode (gateway process) / bare Node", unit: "x", goal: GOALS.redisCpuRatio, ...ratio("redis", (r) => r.keepAlive) });
  const redis = byName.get("redis");
  const redisCpu = redis ? redisPerMessage(redis.keepAlive) : undefined;
  rows.push({
    metric: "redis-server CPU per message (Redis mode)",
    unit: "us",
    goal: GOALS.redisServerMicrosPerMessage,
    ...(redisCpu && redisCpu.cpu.length ? { value: median(redisCpu.cpu), detail: `min ${f(minimum(redisCpu.cpu), 1)} us; ${f(median(redisCpu.bytes))} B in per msg` } : {}),
  });
  for (const name of ["embedded", "redis"] as const) {
    const half = byName.get(name)?.halfRate;
    rows.push({
      metric: `p99 latency at half the max throughput, Postern ${name === "embedded" ? "embedded" : "Redis mode"}`,
      unit: "ms",
      goal: GOALS.p99AtHalfRateMs,
      ...(half?.measured.result.latency ? { value: half.measured.result.latency.p99Ms, detail: `at ${f(half.ratePerSecond)} msg/s` } : {}),
      // A generator that sent late measured its own core's delays, not the server's.
      ...((half?.measured.result.sendLagP99Ms ?? 0) > GOALS.p99AtHalfRateMs / 2 ? { unjudged: `generator sent up to ${f(half!.measured.result.sendLagP99Ms, 1)} ms late (p99)` } : {}),
    });
  }
  rows.push({ metric: "server CPU per full handshake, Postern embedded / bare Node", unit: "x", goal: GOALS.fullHandshakeRatio, ...ratio("embedded", (r) => r.full) });
  const embedded = byName.get("embedded");
  if (embedded) {
    const full = cpuStats(embedded.full).median;
    const resumed = cpuStats(embedded.resumed).median;
    rows.push({ metric: "server CPU per resumed / full handshake, Postern embedded", unit: "x", goal: GOALS.resumedOverFull, value: resumed / full, detail: `${f(resumed)} / ${f(full)} us` });
  } else rows.push({ metric: "server CPU per resumed / full handshake, Postern embedded", unit: "x", goal: GOALS.resumedOverFull });
  rows.push({
    metric: "RSS per idle mTLS connection, Postern embedded",
    unit: "KB",
    goal: GOALS.idleConnectionKb,
    ...(embedded?.idle ? { value: idleKbPerConnection(embedded.idle), detail: `${f(embedded.idle.connections)} connections${byName.get("bare")?.idle ? `; bare Node ${f(idleKbPerConnection(byName.get("bare")!.idle!), 1)} KB` : ""}` } : {}),
  });
  return rows;
}

/**
 * A goal's number as the summary shows it; a value just past its goal gets a digit more than
 * the goal, so the row never reads "1.10x <= 1.10x MISSED" (it reads 1.102x).
 */
export function goalValueText(value: number, unit: GoalRow["unit"], goal?: number): string {
  const show = (more: number) => (unit === "x" ? `${f(value, 2 + more)}x` : `${f(value, (unit === "us" ? 0 : 1) + more)} ${unit}`);
  const close = goal !== undefined && value > goal && show(0) === goalValueText(goal, unit);
  return show(close ? 1 : 0);
}

function goalsSection(results: TargetResults[]): string {
  const rows = goalRows(new Map(results.map((r) => [r.target.name, r])));
  return formatTable(
    ["goal (\"Fast\" issue)", "measured", "goal", "verdict", "detail"],
    rows.map((row) => [
      row.metric,
      row.value === undefined ? "-" : goalValueText(row.value, row.unit, row.goal),
      `<= ${goalValueText(row.goal, row.unit)}`,
      row.value === undefined || !Number.isFinite(row.value) ? "not measured" : row.unjudged ? "not judged" : row.value <= row.goal ? "met" : "MISSED",
      [row.detail, row.unjudged].filter(Boolean).join("; "),
    ]),
  );
}

/** Prints the whole section. */
export function printGatewayReport(say: (line?: string) => void, report: GatewayReport): void {
  const { options, results } = report;
  const bare = results.find((r) => r.target.name === "bare");
  say();
  say(`machine   ${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? "?"}), Linux ${release()}, Node ${process.version}; load average ${f(report.loadAtStart, 1)} at start`);
  for (const note of report.notes) say(`          ${note}`);
  say(`load      ${options.messages} distinct signed messages x ${options.repeats} runs per server, ${options.bodyBytes} B JSON, ${report.clientLabel}, ${options.connections} keep-alive mTLS connections`);
  if (!bare) say("          no bare Node baseline in this run (--only): no ratios");
  const failures = results.flatMap((r) =>
    [...r.keepAlive, ...(r.halfRate ? [r.halfRate.measured] : []), ...r.full, ...r.resumed]
      .filter((m) => m.result.failed > 0)
      .map((m) => `${r.target.label}: ${m.result.failed} failed (first: ${m.result.firstFailure ?? "?"})`)
      .concat(r.idle?.failed ? [`${r.target.label}: ${r.idle.failed} idle connections failed (first: ${r.idle.firstFailure ?? "?"})`] : []),
  );
  for (const failure of failures.slice(0, 8)) say(`FAILURES  ${failure}`);

  say("\n### keep-alive, closed loop at full speed: server CPU per message (whole process tree, /proc utime+stime)");
  say(keepAliveSection(results, bare));
  say(`\n### open loop at half of each server's max throughput (latency from each message's scheduled send)`);
  say(halfRateSection(results));
  say(`\n### handshakes: a new mTLS connection each (handshake, close; no request); resumed: TLS 1.3 session tickets, ${options.handshakes} per run`);
  say(handshakeSection(results, bare));
  if (results.some((r) => r.idle)) {
    say("\n### idle mTLS connections (each sent one message, then idles), opened in steps; RSS of the server's process tree (Node servers: V8's young generation held at 1 MB)");
    say(idleSection(results));
  }
  say("\n### summary: goals, from medians of this run's runs");
  say(goalsSection(results));
  const others = othersPercent(results.flatMap((r) => r.keepAlive));
  if (others > NOISY_OTHERS_PERCENT) {
    say(`NOISY: other processes used ${f(others)}% of a CPU (median) while the messages were timed; every number above is inflated by them, ratios less so. Repeat on a quieter machine before trusting a difference under ~20%.`);
  }
  say(`\n(gateway section took ${f(report.elapsedSeconds)} s)`);
}
