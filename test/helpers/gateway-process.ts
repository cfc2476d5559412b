import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bannerPorts, finished, spawnTs, waitForOutput } from "./process.js";

export interface GatewayProcess {
  child: ChildProcess;
  done: ReturnType<typeof finished>;
  dir: string;
  certs: string;
  dataPort: number;
  adminPort: number;
  publicPort: number;
  /** The start banner (stdout up to it). */
  banner: string;
  /** stderr so far. */
  stderr(): string;
  /** The JSON log lines so far (a line torn by interleaved writes is skipped). */
  lines(): Array<Record<string, unknown>>;
}

/**
 * `postern start` in its own process and temp dir (embedded mode, handshake rate limit off),
 * so a crash shows as an exit rather than as a failed test runner. Stopped at teardown.
 */
export async function startGatewayProcess(
  t: { teardown(fn: () => Promise<void>): void },
  options: { env?: Record<string, string>; configYaml?: string; startTimeoutMs?: number } = {},
): Promise<GatewayProcess> {
  const dir = await mkdtemp(join(tmpdir(), "postern-process-"));
  const env = { ...options.env };
  if (options.configYaml !== undefined) {
    await writeFile(join(dir, "postern.yaml"), options.configYaml);
    env.POSTERN_CONFIG = join(dir, "postern.yaml");
  }
  const child = spawnTs("src/main.ts", [], {
    cwd: dir,
    env: { POSTERN_DATA_PORT: "0", POSTERN_ADMIN_PORT: "0", POSTERN_PUBLIC_PORT: "0", POSTERN_HANDSHAKES_PER_SECOND_PER_ADDRESS: "0", ...env },
  });
  let stderr = "";
  child.stderr?.on("data", (d) => (stderr += d));
  const done = finished(child);
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await done;
    await rm(dir, { recursive: true, force: true });
  });
  const banner = await waitForOutput(child, /npx postern send .*\n/, options.startTimeoutMs ?? 60_000);
  return {
    child,
    done,
    dir,
    certs: join(dir, "certs"),
    ...bannerPorts(banner),
    banner,
    stderr: () => stderr,
    lines: () =>
      stderr.split("\n").flatMap((line) => {
        try {
          return [JSON.parse(line) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
  };
}
