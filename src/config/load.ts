import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";
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
  { variable: "POSTERN_PUBLIC_BASE_URL", key: ["pki", "publicBaseUrl"], kind: "string" },
  { variable: "POSTERN_PKI_STATE_DIR", key: ["pki", "stateDir"], kind: "string" },
  { variable: "POSTERN_AUDIT_LOG", key: ["pki", "auditLogPath"], kind: "string" },
  { variable: "POSTERN_HANDSHAKES_PER_SECOND_PER_ADDRESS", key: ["tls", "handshakesPerSecondPerAddress"], kind: "number" },
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
  const raw = readConfigFile(path, env.POSTERN_CONFIG !== undefined);
  const sources = applyEnvOverrides(raw, env);
  return parseConfig(raw, path, sources);
}

/** Validates a raw config object (as parsed from YAML). */
export function parseConfig(
  raw: unknown,
  origin = "config",
  sources: ReadonlyMap<string, string> = new Map(),
): Readonly<PosternConfig> {
  const result = configSchema.safeParse(raw ?? {}, { reportInput: true });
  if (!result.success) throw new ConfigError(describeIssues(result.error.issues, origin, sources));
  return deepFreeze(result.data);
}

function readConfigFile(path: string, explicit: boolean): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (!explicit && (error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    const where = first.linePos?.[0] ? ` (line ${first.linePos[0].line})` : "";
    throw new ConfigError(`${path}${where}: not valid YAML: ${first.message.split("\n")[0]}`);
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError(`${path}: the top level must be a mapping of keys`);
  }
  return value as Record<string, unknown>;
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
  if (kind === "boolean") return trimmed === "true" ? true : trimmed === "false" ? false : value;
  if (kind === "list") return trimmed.split(",").map((item) => item.trim()).filter((item) => item !== "");
  return value;
}

function describeIssues(issues: readonly z.core.$ZodIssue[], origin: string, sources: ReadonlyMap<string, string>): string {
  const lines = issues.slice(0, 5).map((issue) => {
    const key = issue.path.map(String).join(".") || "(top level)";
    const from = sources.get(key);
    const where = from ? `${key} (from ${from})` : key;
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
