import { execFile, spawn } from "node:child_process";
import { access, constants } from "node:fs/promises";
import { join } from "node:path";
import { CACHE_DIR } from "./cache.js";
import { finished, ROOT } from "./process.js";

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `file` with `input` on its stdin; resolves whatever the exit code (-1 when it is missing
 * or timed out). A command that exits without reading its stdin makes the write fail with
 * EPIPE: that is no error of the run (its exit code tells), so it is not left to crash the test.
 */
export function runCommand(file: string, args: readonly string[], options: { timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { env: options.env ?? process.env, maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs ?? 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === "number" ? (error as { code: number }).code : -1) : 0;
      // No exit code: the command is not installed (ENOENT) or was killed at the timeout.
      resolve({ code, stdout: String(stdout), stderr: String(stderr) || (code === -1 && error ? error.message : "") });
    });
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(options.input ?? "");
  });
}

/**
 * Runs the docker CLI (`runCommand`). DOCKER_BUILDKIT=0: the legacy builder on every machine,
 * whose step output `buildStageImage` reads, and the builder a machine without buildx has anyway.
 */
export function docker(args: readonly string[], options: { timeoutMs?: number; input?: string } = {}): Promise<CommandResult> {
  return runCommand("docker", args, { ...options, env: { ...process.env, DOCKER_BUILDKIT: "0" } });
}

/** Why no Docker engine can be used here, or undefined when `docker info` answers. */
export async function dockerUnavailable(): Promise<string | undefined> {
  const info = await docker(["info", "--format", "{{.ServerVersion}}"], { timeoutMs: 20_000 });
  if (info.code === 0 && info.stdout.trim() !== "") return undefined;
  const why = (info.stderr || info.stdout).trim().split("\n").find((line) => line.trim() !== "") ?? `exit ${info.code}`;
  return `docker info failed (${why})`;
}

export const imageExists = async (image: string) => (await docker(["image", "inspect", image])).code === 0;

/**
 * The image to build Postern from: node:20-bookworm-slim when the engine already has it (a
 * machine with a registry), else postern-base:local, made by deploy/base-image.sh from this
 * machine's node (cached under CACHE_DIR; the image is kept for later runs). Resolves
 * `{ skip }` when neither can be had here, naming why.
 */
export async function baseImage(): Promise<{ image: string; seconds: number } | { skip: string }> {
  const started = performance.now();
  if (await imageExists("node:20-bookworm-slim")) return { image: "node:20-bookworm-slim", seconds: 0 };
  const script = join(ROOT, "deploy/base-image.sh");
  if (!(await imageExists("postern-base:local"))) {
    if (process.getuid?.() !== 0) return { skip: "no node:20-bookworm-slim or postern-base:local image, and deploy/base-image.sh needs root" };
    const debootstrap = await Promise.any(["/usr/sbin/debootstrap", "/sbin/debootstrap"].map((p) => access(p, constants.X_OK))).then(
      () => true,
      () => false,
    );
    if (!debootstrap) return { skip: "no node:20-bookworm-slim or postern-base:local image, and no debootstrap (apt-get install debootstrap)" };
  }
  // Also when the image exists: the script re-imports it when it holds another node version.
  const made = await runScript(script, 15 * 60_000);
  if (made.code !== 0) throw new Error(`deploy/base-image.sh failed (${made.code}): ${made.stdout}${made.stderr}`);
  return { image: "postern-base:local", seconds: (performance.now() - started) / 1000 };
}

async function runScript(script: string, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn("bash", [script], { env: { ...process.env, POSTERN_CACHE_DIR: CACHE_DIR }, stdio: ["ignore", "pipe", "pipe"] });
  const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
  return finished(child).finally(() => clearTimeout(timer));
}

/**
 * The legacy builder keeps each stage's last image as an untagged cache image; removing the
 * tagged runtime image does not remove the build stage's. Its id is the last "---> <id>" before
 * the `FROM ... AS runtime` step.
 */
export function buildStageImage(buildOutput: string): string | undefined {
  const runtimeStep = buildOutput.search(/^Step \d+\/\d+ : FROM \S+ AS runtime$/m);
  if (runtimeStep < 0) return undefined;
  const ids = [...buildOutput.slice(0, runtimeStep).matchAll(/^ ---> ([0-9a-f]{12})$/gm)];
  return ids.at(-1)?.[1];
}

/** The health status Docker's HEALTHCHECK reports, polled until it leaves "starting" or `timeoutMs` passes. */
export async function waitForHealth(container: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await docker(["inspect", "--format", "{{.State.Status}} {{.State.Health.Status}}", container]);
    const [status = "", health = ""] = state.stdout.trim().split(" ");
    if (status !== "running") return `not running (${status || state.stderr.trim()})`;
    if (health !== "starting" || Date.now() > deadline) return health;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
