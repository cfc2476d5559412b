import { parseArgs } from "node:util";
import { ConfigError, DEFAULT_CONFIG_PATH, loadConfig, configJsonSchema, processEnvironment, usesRedis } from "../config/index.js";
import { UsageError } from "./usage.js";

export const usage = `postern config check [--json]
postern config schema
  check    load the configuration as "postern start" would (POSTERN_CONFIG, default
           ${DEFAULT_CONFIG_PATH}, then the POSTERN_* variables) and check it: exit 0, or exit 2
           naming each bad key with its line and column; --json prints the resolved configuration
  schema   print the configuration's JSON Schema (for editors and CI)`;

/** `postern config check|schema`. */
export async function runConfig(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  const { values } = parseArgs({ args: rest, options: { json: { type: "boolean", default: false } }, strict: true, allowPositionals: false });
  if (action === "schema") {
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    return 0;
  }
  if (action !== "check") throw new UsageError(action === undefined ? "give an action: check or schema" : `unknown action ${JSON.stringify(action)}`);
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`postern config: ${error.message}\n`);
    return 2;
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
  } else {
    const routes = config.routes.length;
    const backends = Object.keys(config.backends).length;
    process.stdout.write(
      `ok: ${processEnvironment().POSTERN_CONFIG ?? DEFAULT_CONFIG_PATH}, ${usesRedis(config) ? "Redis" : "embedded"} mode, ${routes} route${routes === 1 ? "" : "s"}, ${backends} backend${backends === 1 ? "" : "s"}\n`,
    );
  }
  return 0;
}
