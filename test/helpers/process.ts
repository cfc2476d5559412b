import { execFile, spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** tsx's loader by absolute URL, so children may run in any working directory. */
const TSX = import.meta.resolve("tsx");

/**
 * Runs an entry point of the project in a child process: a `src/` module as its built file
 * under `dist/` (as users run it; `npm test` builds first, and tsx's compile at every spawn
 * made CLI tests slow enough to time out on a loaded machine), anything else through tsx.
 */
export function spawnTs(entry: string, args: string[], options: { cwd?: string; env?: Record<string, string>; user?: ProcessUser } = {}): ChildProcess {
  const built = /^src\/(.+)\.ts$/.exec(entry);
  const command = built ? [`${ROOT}/dist/${built[1]}.js`] : ["--import", TSX, `${ROOT}/${entry}`];
  return spawn(process.execPath, [...command, ...args], {
    cwd: options.cwd ?? ROOT,
    // Tests stop gateways with SIGTERM: without the readiness delay, unless a test sets one.
    env: { ...process.env, POSTERN_SHUTDOWN_READINESS_DELAY_SECONDS: "0", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
    ...(options.user ? { uid: options.user.uid, gid: options.user.gid } : {}),
  });
}

/** Whom a child runs as (spawn's uid and gid; only root may choose another). */
export interface ProcessUser {
  uid: number;
  gid: number;
}

/** Collects a child's output and exit code. */
export function finished(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => (stdout += d));
  child.stderr?.on("data", (d) => (stderr += d));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

/** Resolves with stdout so far once it matches `pattern`, or rejects after `timeoutMs` (generous: a start on a loaded machine can take many seconds). */
export function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; got: ${seen}`)), timeoutMs);
    child.stdout?.on("data", (d) => {
      seen += d;
      if (pattern.test(seen)) {
        clearTimeout(timer);
        resolve(seen);
      }
    });
    child.on("close", () => {
      clearTimeout(timer);
      reject(new Error(`exited before ${pattern}; got: ${seen}`));
    });
  });
}

/** Runs a tool such as openssl or curl; resolves with its output whatever the exit code. */
export function runTool(cmd: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === "number" ? ((error as { code: number }).code) : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** The three ports a `postern start` banner names (0 for one it does not name). */
export function bannerPorts(banner: string): { dataPort: number; adminPort: number; publicPort: number } {
  const port = (label: RegExp) => Number(label.exec(banner)?.[1] ?? 0);
  return {
    dataPort: port(/data plane \(mTLS\)\s+https:\/\/[^:]+:(\d+)/),
    adminPort: port(/admin plane \(mTLS\)\s+https:\/\/[^:]+:(\d+)/),
    publicPort: port(/public \+ metrics\s+http:\/\/[^:]+:(\d+)/),
  };
}
