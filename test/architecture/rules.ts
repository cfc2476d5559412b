/**
 * The layout rules CONTRIBUTING.md describes, as a pure function over a list of source files
 * and what each imports, so the architecture test can also check itself on made-up input.
 */
import { dirname, join, normalize } from "node:path/posix";

export interface SourceFile {
  /** Path under src/, with "/" separators: "pki/status/crl.ts". */
  file: string;
  /** Module specifiers as written. */
  imports: string[];
}

/** Each third-party library is imported in one home only (STYLE.md). */
export const LIBRARY_HOMES: Record<string, RegExp> = {
  ioredis: /^(redis\/|consumer\/)/,
  "prom-client": /^metrics\/prometheus\.ts$/,
  undici: /^(forward\/|client\/)/,
  "node-forge": /^pki\/keys\/pkcs12\.ts$/,
  "@peculiar/x509": /^pki\/der\/x509\.ts$/,
  "reflect-metadata": /^pki\/der\/x509\.ts$/,
  "@peculiar/asn1-ocsp": /^pki\/status\/ocsp\.ts$/,
  "@peculiar/asn1-x509": /^pki\/status\/ocsp\.ts$/,
  "@peculiar/asn1-schema": /^pki\/status\/ocsp\.ts$/,
  "structured-headers": /^signing\//,
  zod: /^config\//,
  yaml: /^config\//,
  pino: /^log\.ts$/,
  jose: /^sealed\//,
  qrcode: /^cli\/admin\.ts$/,
};

/**
 * Which top-level rooms each room may import (besides its own files and the shared files at
 * the top of src/: errors, log, version). Layers, bottom up: config; storage, redis, metrics;
 * the leaves (signing, pki, replay, forward, ratelimit, consumer, client); tls; gateway; http,
 * admin; cli; app; main. An import between two leaves is allowed only where listed here.
 */
export const ALLOWED_ROOMS: Record<string, readonly string[]> = {
  config: [],
  storage: ["metrics"],
  redis: ["config"],
  metrics: [],
  signing: [],
  sealed: ["storage"],
  client: ["sealed", "signing"],
  pki: ["config", "metrics", "redis", "storage"],
  replay: ["redis", "storage"],
  ratelimit: ["config", "pki", "redis"],
  forward: ["config", "metrics", "pki", "redis", "replay", "signing", "storage"],
  consumer: ["forward", "sealed", "signing"],
  tls: ["metrics", "pki", "ratelimit"],
  gateway: ["config", "forward", "metrics", "pki", "ratelimit", "replay", "sealed", "signing", "tls"],
  http: ["gateway", "metrics", "pki", "ratelimit", "signing", "tls"],
  admin: ["client", "config", "gateway", "http", "pki"],
  est: ["admin", "metrics", "pki"],
  cli: ["app", "client", "config", "consumer", "gateway", "pki", "sealed", "storage"],
  app: ["admin", "config", "est", "forward", "gateway", "http", "metrics", "pki", "ratelimit", "redis", "replay", "sealed", "signing", "storage", "tls"],
};

/** Files allowed at the top of src/ and whom they may import. */
const TOP_FILES: Record<string, readonly string[]> = {
  "errors.ts": [],
  "log.ts": [],
  "version.ts": [],
  "index.ts": ["client", "consumer", "signing"],
  "main.ts": ["cli"],
};

function roomOf(file: string): string {
  return file.includes("/") ? file.slice(0, file.indexOf("/")) : file;
}

function isAncestorOrSelf(folder: string, of: string): boolean {
  return folder === "." || of === folder || of.startsWith(`${folder}/`);
}

/**
 * Where `importer` may reach `target` (both under src/): a file of its own folder or of an
 * ancestor folder, or the index.ts of the folder that is the child of the two folders' lowest
 * common ancestor on the way to the target: its front door.
 */
export function throughFrontDoor(importer: string, target: string): boolean {
  const from = dirname(importer);
  const to = dirname(target);
  if (isAncestorOrSelf(to, from)) return true;
  let common = from;
  while (!isAncestorOrSelf(common, to)) common = dirname(common);
  const rest = common === "." ? to : to.slice(common.length + 1);
  const door = common === "." ? rest.split("/")[0]! : `${common}/${rest.split("/")[0]}`;
  return target === `${door}/index.ts`;
}

/** Every rule broken by `sources`, one line each; empty when the layout holds. */
export function layoutViolations(sources: readonly SourceFile[]): string[] {
  const problems: string[] = [];
  const folders = new Set(sources.filter((s) => s.file.includes("/")).map((s) => dirname(s.file)));
  for (const folder of folders) {
    if (!sources.some((s) => s.file === `${folder}/index.ts`)) problems.push(`${folder}/ has no index.ts`);
  }
  for (const { file, imports } of sources) {
    const room = roomOf(file);
    if (!file.includes("/") && !(file in TOP_FILES)) problems.push(`${file}: no file of its own at the top of src/ (see CONTRIBUTING.md)`);
    for (const spec of imports) {
      if (!spec.startsWith(".")) {
        const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!;
        const home = LIBRARY_HOMES[name];
        if (home && !home.test(file)) problems.push(`${file} imports ${name}, whose home is ${home}`);
        continue;
      }
      const target = normalize(join(dirname(file), spec)).replace(/\.js$/, ".ts");
      const targetRoom = roomOf(target);
      if (targetRoom !== room && target.includes("/")) {
        const allowed = file.includes("/") ? ALLOWED_ROOMS[room] : TOP_FILES[file];
        if (!allowed?.includes(targetRoom)) problems.push(`${file} imports ${targetRoom}/, which ${room} may not use`);
      }
      if (!throughFrontDoor(file, target)) problems.push(`${file} imports ${target} past its folder's index.ts`);
    }
  }
  return problems;
}

/** A millisecond amount as the tests write it: `120_000`, `20 * 60_000`. */
function millis(text: string): number {
  return text.split("*").reduce((product, factor) => product * Number(factor.replace(/[_\s]/g, "")), 1);
}

/**
 * What a test file's own timeout must cover: the file runs its tests one after the other, so
 * when they may take longer together than .taprc's per-file timeout, the runner would kill the
 * file while a test is still inside its own allowance (a Sentinel failover in CI: all checks
 * passed at 106 s, the file was killed in its teardown at 120 s).
 */
export function timeoutProblem(source: string, fileTimeoutMs: number): string | undefined {
  const tests = [...source.matchAll(/^t\.test\([^\n]*\{ ?timeout: ([0-9_ *]+)[,}]/gm)].reduce((sum, m) => sum + millis(m[1]!), 0);
  if (tests <= fileTimeoutMs) return undefined;
  const own = /^t\.setTimeout\(([0-9_ *]+)\)/m.exec(source);
  const allowed = own ? millis(own[1]!) : fileTimeoutMs;
  return allowed >= tests ? undefined : `its tests may take ${tests / 1000} s together, the file ${allowed / 1000} s`;
}
