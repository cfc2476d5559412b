import { join } from "node:path";
import { ADMIN_URL_ENV, DEFAULT_CONFIG_PATH, environmentVariable, loadConfig, processEnvironment, type PosternConfig } from "../config/index.js";

/**
 * What the CLI assumes when a flag is not given: the same configuration `postern start` loads
 * (POSTERN_CONFIG, then the POSTERN_* variables), so `POSTERN_PKI_DIR=x postern cert list`
 * uses x's admin certificate and the admin listener the gateway was configured with.
 * @throws ConfigError (exit 2) when that configuration does not load.
 */
export interface CliDefaults {
  config: Readonly<PosternConfig>;
  configPath: string;
  pkiDir: string;
  dataDir: string;
  auditPath: string;
  /** `POSTERN_ADMIN_URL`, else the configured admin listener. */
  adminUrl: string;
  /** The configured data listener. */
  dataUrl: string;
  /** The configured public listener. */
  publicUrl: string;
}

export function cliDefaults(): CliDefaults {
  const env = processEnvironment();
  const config = loadConfig(env);
  const { admin, data, public: publicListener } = config.listeners;
  return {
    config,
    configPath: env.POSTERN_CONFIG ?? DEFAULT_CONFIG_PATH,
    pkiDir: config.pki.dir,
    dataDir: config.data.dir,
    auditPath: config.pki.auditLogPath ?? join(config.data.dir, "audit.jsonl"),
    adminUrl: environmentVariable(ADMIN_URL_ENV) ?? `https://${reachable(admin.host)}:${admin.port}`,
    dataUrl: `https://${data.host === "0.0.0.0" || data.host === "::" ? "localhost" : reachable(data.host)}:${data.port}`,
    publicUrl: `http://${reachable(publicListener.host)}:${publicListener.port}`,
  };
}

/** A listener's host as a client dials it: a wildcard address means this machine. */
function reachable(host: string): string {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}
