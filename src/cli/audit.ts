import { parseArgs } from "node:util";
import { PosternError } from "../errors.js";
import { verifyAuditLog } from "../pki/index.js";
import { cliDefaults } from "./defaults.js";
import { UsageError } from "./usage.js";

export const usage = `postern audit verify [--file FILE]
  --file FILE          the audit log (default pki.auditLogPath, else <data.dir>/audit.jsonl, from the configuration)
Exit 0 with "ok, N lines", the hash of the last line (record it elsewhere: a rewrite of the
whole file, or a cut at the end, shows only against that anchor) and how many lines each action
has (certificate.bootstrap, certificate.issue, certificate.revoke, ...); exit 1 naming the first
bad line and why: changed, deleted, reordered or malformed.`;

/** `postern audit verify`: exit 0 when the chain holds, 1 naming the first broken line. */
export async function runAudit(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action !== "verify") throw new UsageError(action === undefined ? "give an action: verify" : `unknown action ${JSON.stringify(action)}`);
  const { values } = parseArgs({
    args: rest,
    options: { file: { type: "string" } },
    strict: true,
    allowPositionals: false,
  });
  const file = values.file ?? cliDefaults().auditPath;
  const result = await verifyAuditLog(file).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") throw new PosternError("not-found", `no audit log at ${file}`);
    throw error;
  });
  if (result.ok) {
    const counts = Object.entries(result.actions).sort(([a], [b]) => a.localeCompare(b));
    process.stdout.write(`ok, ${result.lines} lines, head ${result.head}\n${counts.map(([action, n]) => `  ${String(n).padStart(6)}  ${action}\n`).join("")}`);
    return 0;
  }
  process.stdout.write(`${file}: line ${result.line}: ${result.reason}\n`);
  return 1;
}
