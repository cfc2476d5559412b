/**
 * CPU time and resident memory of a process tree, read from Linux's /proc: what a server costs,
 * whatever it is written in and however many processes or threads it runs. The parsers are pure
 * (tested in test/bench/); the readers return undefined where /proc is missing or the process gone.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** The fields of /proc/<pid>/stat the bench uses; times in clock ticks. */
export interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  utimeTicks: number;
  stimeTicks: number;
  /** Times of children that exited and were waited for. */
  cutimeTicks: number;
  cstimeTicks: number;
}

/**
 * Parses one /proc/<pid>/stat line. The command name is in parentheses and may hold spaces and
 * parentheses itself, so the fields are counted from the last `)`.
 * @throws Error when the line does not have the shape of a stat line.
 */
export function parseProcStat(line: string): ProcStat {
  const open = line.indexOf("(");
  const close = line.lastIndexOf(")");
  if (open < 1 || close < open) throw new Error("not a /proc stat line");
  // After the name: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17), 1-based as in proc(5).
  const rest = line.slice(close + 2).split(" ");
  const field = (n: number): number => {
    const value = Number(rest[n - 3]);
    if (!Number.isFinite(value)) throw new Error(`/proc stat field ${n} is not a number`);
    return value;
  };
  return {
    pid: Number(line.slice(0, open - 1)),
    comm: line.slice(open + 1, close),
    ppid: field(4),
    utimeTicks: field(14),
    stimeTicks: field(15),
    cutimeTicks: field(16),
    cstimeTicks: field(17),
  };
}

/** VmRSS of a /proc/<pid>/status text, in bytes; undefined when absent (kernel threads, zombies). */
export function parseStatusRssBytes(status: string): number | undefined {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return match ? Number(match[1]) * 1024 : undefined;
}

/**
 * voluntary_ctxt_switches of a /proc/<pid>/status text: for a single-threaded event loop such as
 * redis-server's, how often it went to sleep waiting for work (each one is a wake-up later).
 */
export function parseStatusVoluntarySwitches(status: string): number | undefined {
  const match = /^voluntary_ctxt_switches:\s+(\d+)$/m.exec(status);
  return match ? Number(match[1]) : undefined;
}

/** How often a process's main thread has slept waiting for work so far; undefined when /proc cannot tell. */
export function voluntarySwitches(pid: number): number | undefined {
  try {
    return parseStatusVoluntarySwitches(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return undefined;
  }
}

/** `root` and every process below it, given each process's parent. */
export function descendantsOf(root: number, parents: ReadonlyMap<number, number>): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of parents) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

let cachedTicksPerSecond: number | undefined;

/** USER_HZ (`getconf CLK_TCK`), 100 when getconf is missing. */
export function ticksPerSecond(): number {
  if (cachedTicksPerSecond === undefined) {
    try {
      cachedTicksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      cachedTicksPerSecond = 100;
    }
  }
  return cachedTicksPerSecond;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return undefined;
  }
}

function processTree(root: number): number[] {
  const parents = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat) parents.set(stat.pid, stat.ppid);
  }
  return descendantsOf(root, parents);
}

/** What a process tree has used so far. */
export interface TreeSample {
  /** utime + stime of every live process in the tree (threads included), plus the root's reaped children. */
  cpuSeconds: number;
  rssBytes: number;
  processes: number;
}

/** Samples the tree under `root`; undefined when the root is gone or /proc is not there. */
export function sampleTree(root: number): TreeSample | undefined {
  const rootStat = readStat(root);
  if (!rootStat) return undefined;
  let ticks = rootStat.cutimeTicks + rootStat.cstimeTicks;
  let rssBytes = 0;
  const pids = processTree(root);
  for (const pid of pids) {
    const stat = pid === root ? rootStat : readStat(pid);
    if (!stat) continue;
    ticks += stat.utimeTicks + stat.stimeTicks;
    try {
      rssBytes += parseStatusRssBytes(readFileSync(`/proc/${pid}/status`, "utf8")) ?? 0;
    } catch {
      // exited between the two reads
    }
  }
  return { cpuSeconds: ticks / ticksPerSecond(), rssBytes, processes: pids.length };
}

/** The command name of a process (e.g. "redis-server"), undefined when it cannot be read. */
export function commandName(pid: number): string | undefined {
  return readStat(pid)?.comm;
}

/**
 * Busy CPU time of the whole machine from the first line of /proc/stat ("cpu  user nice system
 * idle iowait irq softirq steal ..."): everything but idle and iowait, in ticks.
 * @throws Error when the line is not an aggregate cpu line.
 */
export function parseMachineBusyTicks(procStat: string): number {
  const first = procStat.slice(0, procStat.indexOf("\n") === -1 ? undefined : procStat.indexOf("\n"));
  const [label, ...fields] = first.trim().split(/\s+/);
  if (label !== "cpu" || fields.length < 4) throw new Error("not an aggregate /proc/stat cpu line");
  const values = fields.slice(0, 8).map(Number);
  const total = values.reduce((sum, v) => sum + v, 0);
  return total - (values[3] ?? 0) - (values[4] ?? 0);
}

/** CPU seconds the whole machine has been busy (all CPUs together); undefined without /proc. */
export function machineBusySeconds(): number | undefined {
  try {
    return parseMachineBusyTicks(readFileSync("/proc/stat", "utf8")) / ticksPerSecond();
  } catch {
    return undefined;
  }
}
