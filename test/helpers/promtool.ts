import { spawn } from "node:child_process";
import { access, constants } from "node:fs/promises";
import { join } from "node:path";
import { CACHE_DIR } from "./cache.js";

/** How to get promtool without a Prometheus service, for skip notes (.ci/run does this). */
export const PROMTOOL_HINT =
  `apt-get download prometheus && dpkg-deb -x prometheus_*.deb ${CACHE_DIR}/prometheus (Debian's package; .ci/run does it)`;

/** promtool from PATH, else from Debian's prometheus package unpacked under CACHE_DIR; undefined when neither runs. */
export async function findPromtool(): Promise<string | undefined> {
  for (const candidate of ["promtool", join(CACHE_DIR, "prometheus/usr/bin/promtool")]) {
    if (candidate.includes("/")) {
      try {
        await access(candidate, constants.X_OK);
      } catch {
        continue;
      }
    }
    if ((await runPromtool(candidate, ["--version"])).code === 0) return candidate;
  }
  return undefined;
}

/** Runs promtool with `input` on stdin (check metrics reads only stdin); resolves whatever the exit code. */
export function runPromtool(promtool: string, args: readonly string[], input = ""): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(promtool, args, { stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("error", (error) => resolve({ code: -1, output: String(error) }));
    child.on("close", (code) => resolve({ code: code ?? -1, output }));
    child.stdin.on("error", () => undefined); // a promtool that exits early closes its stdin
    child.stdin.end(input);
  });
}
