import { accessSync, constants, readFileSync } from "node:fs";
import { LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { configSchema, type PosternConfig } from "./schema.js";

/** A configuration problem: the message names the key (or variable) and what is wrong. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** Environment variables operators set per deployment, and the key each one overrides. */
type EnvKind = "string" | "number" | "boolean" | "list";

export const ENV_OVERRIDES: ReadonlyArray<{ variable: string; key: readonly string[]; kind: EnvKind }> = [
  { variable: "POSTERN_REDIS_URL", key: ["redis", "url"], kind: "string" },
  { variable: "POSTERN_REDIS_CLUSTER", key: ["redis", "cluster"], kind: "boolean" },
  { variable: "POSTERN_REDIS_SENTINELS", key: ["redis", "sentinel", "nodes"], kind: "list" },
  { variable: "POSTERN_REDIS_SENTINEL_MASTER", key: ["redis", "sentinel", "masterName"], kind: "string" },
  { variable: "POSTERN_REDIS_WAIT_REPLICAS", key: ["redis", "waitReplicas", "replicas"], kind: "number" },
  { variable: "POSTERN_DATA_HOST", key: ["listeners", "data", "host"], kind: "string" },
  { variable: "POSTERN_DATA_PORT", key: ["listeners", "data", "port"], kind: "number" },
  { variable: "POSTERN_ADMIN_HOST", key: ["listeners", "admin", "host"], kind: "string" },
  { variable: "POSTERN_ADMIN_PORT", key: ["listeners", "admin", "port"], kind: "number" },
  { variable: "POSTERN_PUBLIC_HOST", key: ["listeners", "public", "host"], kind: "string" },
  { variable: "POSTERN_PUBLIC_PORT", key: ["listeners", "public", "port"], kind: "number" },
  { variable: "POSTERN_PKI_DIR", key: ["pki", "dir"], kind: "string" },
  { variable: "POSTERN_CA_PASSPHRASE_FILE", key: ["pki", "passphraseFile"], kind: "string" },
  { variable: "POSTERN_PKI_HOSTNAMES", key: ["pki", "hostnames"], kind: "list" },
  { variable: "POSTERN_DATA_DIR", key: ["data", "dir"], kind: "string" },
  { variable: "POSTERN_LOG_LEVEL", key: ["log", "level"], kind: "string" },
  { variable: "POSTERN_SHUTDOWN_READINESS_DELAY_SECONDS", key: ["shutdown", "readinessDelaySeconds"], kind: "number" },
  { variable: "POSTERN_PUBLIC_BASE_URL", key: ["pki", "publicBaseUrl"], kind: "string" },
  { variable: "POSTERN_PKI_STATE_DIR", key: ["pki", "stateDir"], kind: "string" },
  { variable: "POSTERN_AUDIT_LOG", key: ["pki", "auditLogPath"], kind: "string" },
  { variable: "POSTERN_PKI_STORE_DIR", key: ["pki", "storeDir"], kind: "string" },
  { variable: "POSTERN_PKI_SIGNING_KEYS_DIR", key: ["pki", "signingKeysDir"], kind: "string" },
  { variable: "POSTERN_PKI_READ_ONLY", key: ["pki", "readOnly"], kind: "boolean" },
  { variable: "POSTERN_HANDSHAKES_PER_SECOND_PER_ADDRESS", key: ["tls", "handshakesPerSecondPerAddress"], kind: "number" },
  { variable: "POSTERN_WORKERS", key: ["workers"], kind: "number" },
];

export const DEFAULT_CONFIG_PATH = "config/postern.yaml";

/**
 * Loads the configuration: the YAML file named by `POSTERN_CONFIG` (default
 * config/postern.yaml; a missing default file means all defaults), then environment
 * overrides, then one schema check. The result is deeply frozen.
 * @throws ConfigError naming the key and the problem.
 */
export function loadConfig(env: Env = process.env): Readonly<PosternConfig> {
  const path = env.POSTERN_CONFIG ?? DEFAULT_CONFIG_PATH;
  const { raw, locate } = readConfigFile(path, env.POSTERN_CONFIG !== undefined);
  const sources = applyEnvOverrides(raw, env);
  return parseConfig(raw, path, sources, locate);
}

/** Validates a raw config object (as parsed from YAML). */
export function parseConfig(
  raw: unknown,
  origin = "config",
  sources: ReadonlyMap<string, string> = new Map(),
  locate: Locate = () => undefined,
): Readonly<PosternConfig> {
  const result = configSchema.safeParse(raw ?? {}, { reportInput: true });
  if (!result.success) throw new ConfigError(describeIssues(result.error.issues, origin, sources, locate));
  for (const [name, backend] of Object.entries(result.data.backends)) {
    if (backend.type !== "http" || backend.tls.caFile === undefined) continue;
    try {
      accessSync(backend.tls.caFile, constants.R_OK);
    } catch (cause) {
      throw new ConfigError(`backends.${name}.tls.caFile: cannot read ${backend.tls.caFile} (${(cause as NodeJS.ErrnoException).code ?? "error"})`);
    }
  }
  return deepFreeze(result.data);
}

/** Where a key's value stands in the file ("line 3, column 11"), when it came from the file. */
type Locate = (path: readonly PropertyKey[]) => string | undefined;

function readConfigFile(path: string, explicit: boolean): { raw: Record<string, unknown>; locate: Locate } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (!explicit && (error as NodeJS.ErrnoException).code === "ENOENT") return { raw: {}, locate: () => undefined };
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  const position = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return `line ${line}, column ${col}`;
  };
  const first = doc.errors[0];
  if (first) throw new ConfigError(`${path} (${position(first.pos[0])}): not valid YAML: ${first.message.split("\n")[0]}`);
  const value: unknown = doc.toJS();
  const locate: Locate = (keyPath) => {
    // The deepest node of the path that the file has (a missing key is reported at its parent).
    for (let depth = keyPath.length; depth >= 1; depth--) {
      const node = doc.getIn(keyPath.slice(0, depth) as unknown[], true) as { range?: [number, number, number] } | undefined;
      if (node?.range) return position(node.range[0]);
    }
    return undefined;
  };
  if (value === null || value === undefined) return { raw: {}, locate };
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError(`${path}: the top level must be a mapping of keys`);
  }
  return { raw: value as Record<string, unknown>, locate };
}

/** Writes environment overrides into `raw`; returns which key came from which variable. */
function applyEnvOverrides(raw: Record<string, unknown>, env: Env): Map<string, string> {
  const sources = new Map<string, string>();
  for (const { variable, key, kind } of ENV_OVERRIDES) {
    const value = env[variable];
    if (value === undefined || value === "") continue;
    let target = raw;
    for (const segment of key.slice(0, -1)) {
      const next = target[segment];
      target[segment] = next !== null && typeof next === "object" ? next : {};
      target = target[segment] as Record<string, unknown>;
    }
    target[key.at(-1)!] = fromEnv(value, kind);
    sources.set(key.join("."), variable);
  }
  return sources;
}

/** A value that does not convert stays a string, so the schema names the key it breaks. */
function fromEnv(value: string, kind: EnvKind): unknown {
  const trimmed = value.trim();
  if (kind === "number") return /^\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : value;
  if (kind === "boolean") {
    const word = trimmed.toLowerCase();
    return ["true", "1", "yes", "on"].includes(word) ? true : ["false", "0", "no", "off"].includes(word) ? false : value;
  }
  if (kind === "list") return trimmed.split(",").map((item) => item.trim()).filter((item) => item !== "");
  return value;
}

function describeIssues(issues: readonly z.core.$ZodIssue[], origin: string, sources: ReadonlyMap<string, string>, locate: Locate): string {
  const lines = issues.slice(0, 5).map((issue) => {
    const key = issue.path.map(String).join(".") || "(top level)";
    const from = sources.get(key);
    const at = from ? undefined : locate(issue.path);
    const where = from ? `${key} (from ${from})` : at ? `${key} (${at})` : key;
    return `${where}: ${describeIssue(issue)}`;
  });
  const more = issues.length > 5 ? `\n  ... and ${issues.length - 5} more` : "";
  return `invalid configuration in ${origin}:\n  ${lines.join("\n  ")}${more}`;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === "unrecognized_keys") return `unknown key(s) ${issue.keys.join(", ")}`;
  if (issue.code === "invalid_type") {
    const got = "input" in issue ? typeOf(issue.input) : undefined;
    return `expected ${issue.expected}${got ? `, got ${got}` : ""}`;
  }
  return issue.message;
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "string") return `the string ${JSON.stringify(value.slice(0, 40))}`;
  return typeof value;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
