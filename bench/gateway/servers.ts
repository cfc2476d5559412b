/**
 * The servers under test, each in its own process on the servers' core: Postern as `npm start`
 * runs it (`node dist/main.js`, env overrides, a config file), a bare Node mTLS server, and
 * nginx. All present the same server certificate and ask for client certificates of the same CA.
 */
import { spawnSync, type ChildProcess } from "node:child_process";
import { openSync, readdirSync, readFileSync, statSync, closeSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { SERVER_TLS_OPTIONS } from "../../src/tls/server-options.js";
import { spawnPinned, stopChild, waitForLine } from "./processes.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** A running server: the pid whose process tree is measured, and where it listens. */
export interface ServerProcess {
  pid: number;
  host: string;
  port: number;
  /** The end of its log, for the error when it fails (the temp dir is gone after the run). */
  logTail(): string;
  /** How it ended ("signal SIGTERM", "code 1") once it has exited on its own; undefined while it runs. */
  exited(): string | undefined;
  stop(): Promise<void>;
}

function exitOf(child: ChildProcess): string | undefined {
  if (child.signalCode !== null) return `signal ${child.signalCode}`;
  return child.exitCode !== null ? `code ${child.exitCode}` : undefined;
}

/** Where the bare server and nginx find the (decrypted) server key, the chain and the CA bundle. */
export interface ServerTlsFiles {
  keyPath: string;
  chainPath: string;
  caPath: string;
}

function newestMtimeMs(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = statSync(path);
    newest = Math.max(newest, stat.isDirectory() ? newestMtimeMs(path) : stat.mtimeMs);
  }
  return newest;
}

/** Runs `npm run build`'s compiler when dist/main.js is missing or older than a file under src/. */
export function ensureBuilt(say: (line: string) => void): string {
  const main = join(ROOT, "dist", "main.js");
  let builtAt = 0;
  try {
    builtAt = statSync(main).mtimeMs;
  } catch {
    // not built yet
  }
  if (builtAt < newestMtimeMs(join(ROOT, "src"))) {
    say("building dist/ (tsc -p tsconfig.build.json, as npm run build) ...");
    const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
    const built = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: ROOT, encoding: "utf8" });
    if (built.status !== 0) throw new Error(`build failed:\n${built.stdout}${built.stderr}`);
  }
  return main;
}

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

function tail(path: string): string {
  try {
    return readFileSync(path, "utf8").slice(-3000);
  } catch {
    return "";
  }
}

/** The environment without the caller's POSTERN_* settings, so only the bench's overrides apply. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith("POSTERN_")) env[name] = value;
  return { ...env, ...extra };
}

/**
 * The bench's config file: connection caps and the handshake rate limit off (one generator opens
 * thousands of connections from a few addresses), keep-alive long enough for the idle phase.
 * With `redis`, Redis mode under a key prefix of this run's own.
 */
export function benchConfig(redis?: { url: string; keyPrefix: string }): Record<string, unknown> {
  return {
    tls: { handshakesPerSecondPerAddress: 0 },
    limits: { maxConnections: 0, maxConnectionsPerAddress: 0, maxConnectionsPerIdentity: 0, keepAliveTimeoutSeconds: 300 },
    ...(redis ? { redis } : {}),
  };
}

/**
 * `node dist/main.js` in `dir` (its working directory), as `npm start` runs it: ports and
 * directories from POSTERN_* variables, the rest from POSTERN_CONFIG. Ready once its banner is out.
 */
export async function startPostern(options: {
  main: string;
  dir: string;
  pkiDir: string;
  config: Record<string, unknown>;
  cpu: number | undefined;
  /** V8 CPU profiles go here when set (`node --cpu-prof`). */
  cpuProfDir?: string | undefined;
  /** Flags for `node` itself (V8's), before the script. */
  nodeFlags?: readonly string[] | undefined;
}): Promise<ServerProcess & { adminPort: number }> {
  const configPath = join(options.dir, "postern.yaml");
  // JSON is YAML.
  await writeFile(configPath, JSON.stringify(options.config, null, 2));
  const logPath = join(options.dir, "postern.log");
  const log = openSync(logPath, "a");
  const profile = options.cpuProfDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`];
  const child = spawnPinned(options.cpu, process.execPath, [...(options.nodeFlags ?? []), ...profile, options.main], {
    cwd: options.dir,
    env: cleanEnv({
      POSTERN_CONFIG: configPath,
      POSTERN_DATA_HOST: "127.0.0.1",
      POSTERN_DATA_PORT: "0",
      POSTERN_ADMIN_PORT: "0",
      POSTERN_PUBLIC_PORT: "0",
      POSTERN_PKI_DIR: options.pkiDir,
      POSTERN_DATA_DIR: join(options.dir, "data"),
    }),
    stdio: ["ignore", "pipe", log],
  });
  closeSync(log);
  const banner = await waitForLine(child, /data plane \(mTLS\)\s+https:\/\/[^:]+:(\d+)[\s\S]*admin plane \(mTLS\)\s+https:\/\/[^:]+:(\d+)/, 120_000, () => tail(logPath));
  return { pid: child.pid!, host: "127.0.0.1", port: Number(banner[1]), adminPort: Number(banner[2]), logTail: () => tail(logPath), exited: () => exitOf(child), stop: () => stopChild(child) };
}

/**
 * The bare baseline: bench/gateway/bare-server.ts, compiled to plain JavaScript here so it runs
 * on `node` alone like Postern's dist/ (no loader thread in its CPU or memory).
 */
export async function startBare(options: { dir: string; tls: ServerTlsFiles; cpu: number | undefined; nodeFlags?: readonly string[] | undefined }): Promise<ServerProcess> {
  const source = readFileSync(join(ROOT, "bench", "gateway", "bare-server.ts"), "utf8");
  const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  const script = join(options.dir, "bare-server.mjs");
  await writeFile(script, js);
  const logPath = join(options.dir, "bare.log");
  const log = openSync(logPath, "a");
  const child = spawnPinned(options.cpu, process.execPath, [...(options.nodeFlags ?? []), script], {
    cwd: options.dir,
    env: cleanEnv({
      BARE_KEY: options.tls.keyPath,
      BARE_CERT: options.tls.chainPath,
      BARE_CA: options.tls.caPath,
      // Postern's suites and order, so the baseline differs by what Postern does, not by cipher.
      BARE_CIPHERS: SERVER_TLS_OPTIONS.ciphers,
    }),
    stdio: ["ignore", "pipe", log],
  });
  closeSync(log);
  const line = await waitForLine(child, /listening (\d+)/, 30_000, () => tail(logPath));
  return { pid: child.pid!, host: "127.0.0.1", port: Number(line[1]), logTail: () => tail(logPath), exited: () => exitOf(child), stop: () => stopChild(child) };
}

/** nginx's version, or undefined when it is not installed. */
export function nginxVersion(): string | undefined {
  const probe = spawnSync("nginx", ["-v"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) return undefined;
  return /nginx\/(\S+)/.exec(probe.stderr)?.[1] ?? "?";
}

/**
 * Installs Debian's nginx package when nginx is missing (as `apt-get install`; Debian's
 * policy-rc.d keeps the system service from starting where no init system runs it). Resolves
 * with nginx's version, or with why it could not be had.
 */
export function installNginx(say: (line: string) => void): { version: string } | { missing: string } {
  if (process.getuid?.() !== 0) return { missing: "not installed, and only root may install it (apt-get install -y nginx)" };
  if (spawnSync("apt-get", ["--version"], { stdio: "ignore" }).status !== 0) return { missing: "not installed, and there is no apt-get here to install it" };
  say("installing nginx from Debian's packages (apt-get install -y nginx) ...");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () => spawnSync("apt-get", ["install", "-y", "-qq", "nginx"], { env, encoding: "utf8", timeout: 300_000 });
  let result = install();
  if (result.status !== 0) {
    // A fresh machine's package lists may be empty or stale.
    spawnSync("apt-get", ["update", "-qq"], { env, stdio: "ignore", timeout: 300_000 });
    result = install();
  }
  const version = nginxVersion();
  if (version !== undefined) return { version };
  const why = (result.error?.message ?? result.stderr ?? "").trim().split("\n").pop() || `exit ${result.status}`;
  return { missing: `not installed, and apt-get install -y nginx failed (${why})` };
}

/** nginx in the foreground with a config of its own (one worker, mTLS, `return 202`), never the system service. */
export async function startNginx(options: { dir: string; tls: ServerTlsFiles; cpu: number | undefined }): Promise<ServerProcess> {
  const port = await freePort();
  const { dir, tls } = options;
  const conf = join(dir, "nginx.conf");
  await writeFile(
    conf,
    `daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "nginx-error.log")} warn;
events { worker_connections 10000; }
http {
  access_log off;
  client_body_temp_path ${join(dir, "client_body")};
  proxy_temp_path ${join(dir, "proxy")};
  fastcgi_temp_path ${join(dir, "fastcgi")};
  uwsgi_temp_path ${join(dir, "uwsgi")};
  scgi_temp_path ${join(dir, "scgi")};
  keepalive_timeout 300s;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate ${tls.chainPath};
    ssl_certificate_key ${tls.keyPath};
    ssl_client_certificate ${tls.caPath};
    ssl_verify_client on;
    ssl_verify_depth 3;
    location / {
      default_type application/json;
      return 202 '{"id":"nginx"}';
    }
  }
}
`,
  );
  const logPath = join(dir, "nginx-error.log");
  const log = openSync(join(dir, "nginx.out"), "a");
  const child = spawnPinned(options.cpu, "nginx", ["-p", dir, "-c", conf, "-e", logPath], { cwd: dir, stdio: ["ignore", log, log] });
  closeSync(log);
  await waitForPort(port, child, () => tail(logPath) + tail(join(dir, "nginx.out")));
  return { pid: child.pid!, host: "127.0.0.1", port, logTail: () => tail(logPath), exited: () => exitOf(child), stop: () => stopChild(child) };
}

async function waitForPort(port: number, child: { exitCode: number | null }, describe: () => string): Promise<void> {
  const { connect } = await import("node:net");
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}\n${describe()}`);
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => (socket.destroy(), resolve(true)));
      socket.once("error", () => resolve(false));
    });
    if (up) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nothing listens on ${port} after 15 s\n${describe()}`);
}
