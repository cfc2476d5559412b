/**
 * Child processes of the bench: servers on one core, the load generator on another (`taskset`),
 * started and stopped by their own pid only.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from "node:child_process";
import { readFileSync } from "node:fs";

/** CPU numbers of a Cpus_allowed_list such as "0-1" or "0,2-3,8". */
export function parseCpuList(list: string): number[] {
  return list
    .trim()
    .split(",")
    .filter((part) => part !== "")
    .flatMap((part) => {
      const [from, to] = part.split("-").map(Number);
      if (from === undefined || !Number.isInteger(from)) return [];
      const last = to !== undefined && Number.isInteger(to) ? to : from;
      return Array.from({ length: last - from + 1 }, (_, i) => from + i);
    });
}

/** Where servers and the generator run; undefined cores mean "not pinned". */
export interface Pinning {
  serverCpu?: number;
  generatorCpu?: number;
  note: string;
}

/** Servers on the first CPU this process may use, the generator (and the orchestrator) on the second. */
export function choosePinning(): Pinning {
  let cpus: number[] = [];
  try {
    cpus = parseCpuList(/^Cpus_allowed_list:\s*(.+)$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? "");
  } catch {
    // not Linux
  }
  const taskset = spawnSync("taskset", ["-c", String(cpus[0] ?? 0), "true"]).status === 0;
  if (!taskset) return { note: "not pinned: taskset is missing or not permitted here (servers and generator share the cores)" };
  if (cpus.length < 2) return { note: `not pinned: this process may use only CPU ${cpus.join(",") || "?"}` };
  const [serverCpu, generatorCpu] = cpus as [number, number];
  // The orchestrator mostly waits, but it must not wake up on the servers' core.
  spawnSync("taskset", ["-a", "-cp", String(generatorCpu), String(process.pid)]);
  return { serverCpu, generatorCpu, note: `servers pinned to CPU ${serverCpu}, load generator and orchestrator to CPU ${generatorCpu} (taskset)` };
}

/** Spawns `command` on `cpu` (through taskset, which execs it: the child's pid is the command's). */
export function spawnPinned(cpu: number | undefined, command: string, args: string[], options: SpawnOptions): ChildProcess {
  return cpu === undefined ? spawn(command, args, options) : spawn("taskset", ["-c", String(cpu), command, ...args], options);
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Resolves once a child has written a line matching `pattern` to stdout; rejects if it exits first. */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number, describe: () => string): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new Error(`${why}\n${describe()}\nstdout: ${seen.slice(-2000)}`));
    };
    const timer = setTimeout(() => fail(`no line matching ${pattern} within ${timeoutMs} ms`), timeoutMs);
    child.stdout?.on("data", (chunk: Buffer) => {
      seen += chunk.toString();
      const match = pattern.exec(seen);
      if (match) {
        clearTimeout(timer);
        child.removeListener("exit", onExit);
        resolve(match);
      }
    });
    const onExit = (code: number | null) => fail(`exited (code ${code}) before printing ${pattern}`);
    child.once("exit", onExit);
  });
}
