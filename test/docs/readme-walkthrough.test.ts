/**
 * The README's walkthrough, run as written: every shell block marked `<!-- walkthrough -->`
 * runs in README order, in the directory of a gateway started as `npm start` starts it, with
 * only the listener ports changed (8443, 8444 and 9464 are taken by other tests) and the
 * `postern` command found where `npm ci` puts it. A block runs under `set -eo pipefail`: every
 * command must succeed, unless the marker says `exit=N` for the block's documented outcome.
 * Variables a block exports reach the blocks after it, as in one terminal.
 */
import { spawn } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { finished, ROOT, spawnTs, waitForOutput } from "../helpers/process.js";

interface WalkthroughBlock {
  line: number;
  text: string;
  exit: number;
}

function walkthroughBlocks(markdown: string): WalkthroughBlock[] {
  const lines = markdown.split("\n");
  const found: WalkthroughBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const marker = /^<!-- walkthrough(?: exit=(\d+))? -->$/.exec(lines[i]!);
    if (!marker) continue;
    if (!/^```(sh|bash)$/.test(lines[i + 1] ?? "")) throw new Error(`README.md:${i + 1}: a walkthrough marker must stand right above a sh block`);
    const end = lines.indexOf("```", i + 2);
    found.push({ line: i + 2, text: lines.slice(i + 2, end).join("\n"), exit: Number(marker[1] ?? 0) });
  }
  return found;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

function bash(script: string, cwd: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn("bash", ["-c", `set -eo pipefail\n${script}`], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("close", (code) => resolve({ code, out }));
  });
}

// A gateway and some thirty CLI runs in sequence (about 30 s on an idle 2-core machine, 50 s
// under a full parallel suite): three times that, so a loaded machine does not fail it.
t.setTimeout(300_000);

t.test("the README's walkthrough blocks run as written against a fresh gateway", async (t) => {
  const blocks = walkthroughBlocks(await readFile(join(ROOT, "README.md"), "utf8"));
  t.ok(blocks.length >= 6, `walkthrough blocks: ${blocks.length}`);
  const dir = await mkdtemp(join(tmpdir(), "postern-readme-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // Where `npm ci` puts the command (the README also shows `npx postern` and plain `postern`).
  await mkdir(join(dir, "node_modules", ".bin"), { recursive: true });
  const shim = join(dir, "node_modules", ".bin", "postern");
  await writeFile(shim, `#!/bin/sh\nexec "${process.execPath}" "${join(ROOT, "dist", "cli", "main.js")}" "$@"\n`);
  await chmod(shim, 0o755);

  const ports = { data: await freePort(), admin: await freePort(), public: await freePort() };
  const env = {
    POSTERN_DATA_PORT: String(ports.data),
    POSTERN_ADMIN_PORT: String(ports.admin),
    POSTERN_PUBLIC_PORT: String(ports.public),
    PATH: `${join(dir, "node_modules", ".bin")}:${process.env.PATH ?? ""}`,
  };
  const server = spawnTs("src/main.ts", [], { cwd: dir, env });
  const exited = finished(server);
  t.teardown(async () => {
    server.kill("SIGTERM");
    await exited;
  });
  await waitForOutput(server, /npx postern send .*\n/);

  for (const block of blocks) {
    const script = block.text
      .replace(/\bnpx postern\b/g, "postern")
      .replace(/:8443\b/g, `:${ports.data}`)
      .replace(/:8444\b/g, `:${ports.admin}`)
      .replace(/:9464\b/g, `:${ports.public}`);
    // One reader, one terminal: what a block exports (a password variable) the next ones see.
    const result = await bash(`[ -f .walkthrough-env ] && . ./.walkthrough-env\n${script}\nexport -p > .walkthrough-env`, dir, env);
    t.equal(result.code, block.exit, `README.md:${block.line} exits ${block.exit}\n${script}\n--- output ---\n${result.out}`);
  }
});
