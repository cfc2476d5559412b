/**
 * `postern start` and the CLI as real processes in a directory of their own, for the PKI's
 * trust-state scenarios: restarts, kill -9, a second start, replicas with other settings.
 */
import type { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readFile, readdir, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { bannerPorts, finished, ROOT, spawnTs, type ProcessUser } from "./process.js";

export interface PosternProcess {
  child: ChildProcess;
  dataPort: number;
  adminPort: number;
  publicPort: number;
  publicUrl: string;
  /** Everything written to stderr so far (the JSON log). */
  stderr(): string;
  /**
   * Waits until the log (from `from`, a length of `stderr()` read before) matches `pattern` and
   * returns it: log lines are buffered up to a fraction of a second, so a line about an event is
   * read by waiting for it, never right after the event.
   */
  logged(pattern: RegExp, from?: number, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code once the process ended. */
  exited: Promise<number | null>;
  /** SIGTERM and wait. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait: no drain, no cleanup. */
  kill9(): Promise<number | null>;
}

/** Starts `postern start` in `cwd` (as `user`, when given) and waits for its banner (or its exit). */
export async function startPostern(cwd: string, env: Record<string, string>, timeoutMs = 60_000, user?: ProcessUser): Promise<PosternProcess> {
  const child = spawnTs("src/main.ts", [], { cwd, env: { POSTERN_DATA_PORT: "0", POSTERN_ADMIN_PORT: "0", POSTERN_PUBLIC_PORT: "0", ...env }, ...(user ? { user } : {}) });
  let out = "";
  let err = "";
  child.stdout?.on("data", (d) => (out += d));
  child.stderr?.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  const banner = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner within ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
    const check = () => {
      if (/npx postern send .*\n/.test(out)) {
        clearTimeout(timer);
        resolve(out);
      }
    };
    child.stdout?.on("data", check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`postern exited (${code}) before its banner; stderr: ${err}`));
    });
  });
  const { dataPort, adminPort, publicPort } = bannerPorts(banner);
  return {
    child,
    dataPort,
    adminPort,
    publicPort,
    publicUrl: `http://127.0.0.1:${publicPort}`,
    stderr: () => err,
    async logged(pattern, from = 0, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const text = err.slice(from);
        if (pattern.test(text)) return text;
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no log line matching ${pattern} within ${timeoutMs} ms; stderr: ${text}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    exited,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      return exited;
    },
    async kill9() {
      if (child.exitCode === null) child.kill("SIGKILL");
      return exited;
    },
  };
}

/** Runs `postern start` (as `user`, when given) expecting it to fail; resolves with its exit code and output. */
export async function failedStart(cwd: string, env: Record<string, string>, user?: ProcessUser): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return finished(spawnTs("src/main.ts", [], { cwd, env: { POSTERN_DATA_PORT: "0", POSTERN_ADMIN_PORT: "0", POSTERN_PUBLIC_PORT: "0", ...env }, ...(user ? { user } : {}) }));
}

/** Runs a CLI command in `cwd` (as `user`, when given). */
export function postern(cwd: string, env: Record<string, string>, args: string[], user?: ProcessUser) {
  return finished(spawnTs("src/cli/main.ts", args, { cwd, env, ...(user ? { user } : {}) }));
}

/** Admin CLI flags for a gateway whose PKI is `certs` and admin port `adminPort`. */
export function adminFlags(certs: string, adminPort: number): string[] {
  return ["--admin-url", `https://127.0.0.1:${adminPort}`, "--cert", join(certs, "admin.crt"), "--key", join(certs, "admin.key"), "--ca", join(certs, "ca-bundle.pem")];
}

/** SHA-256 of every file under `dir` (recursively), by relative path. */
export async function fileHashes(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string): Promise<void> => {
    for (const name of await readdir(d)) {
      const path = join(d, name);
      if ((await stat(path)).isDirectory()) await walk(path);
      else out[relative(dir, path)] = createHash("sha256").update(await readFile(path)).digest("hex");
    }
  };
  await walk(dir);
  return out;
}

/** Polls `probe` every 200 ms until it returns true, or fails after `timeoutMs`. */
export async function eventually(what: string, probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > until) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The cRLNumber of a PEM or DER CRL, through openssl. */
export function crlNumberOf(text: string): bigint {
  const m = /X509v3 CRL Number:\s*\n\s*(\d+|0x[0-9A-Fa-f]+)/.exec(text);
  if (!m) throw new Error(`no CRL Number in: ${text.slice(0, 300)}`);
  return BigInt(m[1]!);
}

/**
 * A PKI bootstrapped as deploy/README.md's step 2 does it: one normal start in `<root>/bootstrap`
 * with the cluster's configuration, stopped again; resolves with its PKI directory. Throws when
 * the start does not stop cleanly (an assertion at a file's top level would end its tap run).
 * `dir` and `env` run the CLI against that PKI as the operator would there.
 */
export async function bootstrapKubernetesPki(root: string): Promise<{ config: string; dir: string; env: Record<string, string>; certs: string }> {
  const config = join(ROOT, "deploy/kubernetes/postern.yaml");
  const dir = join(root, "bootstrap");
  await mkdir(dir);
  const env = { POSTERN_CONFIG: config, POSTERN_PKI_DIR: "pki", POSTERN_DATA_DIR: "pki/data" };
  const first = await startPostern(dir, env);
  if ((await first.stop()) !== 0) throw new Error(`the bootstrap start did not stop cleanly: ${first.stderr()}`);
  return { config, dir, env, certs: join(dir, "pki") };
}
