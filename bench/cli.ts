/**
 * CLI startup: wall-clock time from spawn to exit of `postern --help`, `postern send --help`
 * and a few other commands, each in its own process, against `node -e 0` started the same way
 * in the same run (the floor no command can go under). The README points users at
 * node_modules/.bin/postern: this is what each invocation costs them.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
const RUNS = 15;
/** The "Operable" issue's goal for `--help` and `send`: well under this much startup. */
const GOAL_MS = 300;

const CASES: Array<{ label: string; args: string[]; goal: boolean }> = [
  { label: "node -e 0 (baseline)", args: ["-e", "0"], goal: false },
  { label: "postern --help", args: [CLI, "--help"], goal: true },
  { label: "postern --version", args: [CLI, "--version"], goal: false },
  { label: "postern send --help", args: [CLI, "send", "--help"], goal: true },
  { label: "postern cert list --help", args: [CLI, "cert", "list", "--help"], goal: false },
  { label: "postern verify --help", args: [CLI, "verify", "--help"], goal: false },
  { label: "postern start --help", args: [CLI, "start", "--help"], goal: false },
];

function timeOnce(args: string[]): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { stdio: "ignore" });
  if (result.status !== 0) throw new Error(`${args.join(" ")} exited ${result.status}`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

export async function benchCli(): Promise<void> {
  process.stdout.write(`\n## cli: startup of each command, spawn to exit, ${RUNS} runs each (interleaved), node ${process.version}\n`);
  const times = new Map<string, number[]>(CASES.map((c) => [c.label, []]));
  // Interleaved rounds: a burst of load on the machine hits every case alike.
  for (let run = 0; run < RUNS; run++) for (const c of CASES) times.get(c.label)!.push(timeOnce(c.args));
  const baseline = median(times.get(CASES[0]!.label)!);
  const rows = CASES.map((c) => {
    const all = times.get(c.label)!;
    const med = median(all);
    return [c.label, Math.min(...all).toFixed(0), med.toFixed(0), (med - baseline).toFixed(0), c.goal ? (med - baseline <= GOAL_MS ? "met" : "MISSED") : ""];
  });
  const header = ["command", "min ms", "median ms", "over node ms", `goal: <= ${GOAL_MS} ms over node`];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ");
  process.stdout.write(`${line(header)}\n${widths.map((w) => "-".repeat(w)).join("  ")}\n${rows.map(line).join("\n")}\n`);
}
