import { parseArgs } from "node:util";
import { PosternError } from "../errors.js";
import { verifyAuditLog } from "../pki/index.js";
import { cliDefaults } from "./defaults.js";
import { JSON_USAGE, printJson, UsageError } from "./usage.js";

export const usage = `postern audit verify [--file FILE] [--json]
  --file FILE          the audit log (default pki.auditLogPath, else <data.dir>/audit.jsonl, from the configuration);
                       its rotated files (FILE.000001, ...) are verified with it, oldest first
Exit 0 with "ok, N lines", the hash of the last line (record it elsewhere: a rewrite of the
whole file, or a cut at the end, shows only against that anchor), where the chain starts (its
first line, or the first line retention kept) and how many lines each action has
(certificate.bootstrap, certificate.issue, certificate.revoke, ...); exit 1 naming the first
bad line and why: changed, deleted, reordered, malformed, or missing-file (a rotated file
between two kept ones is gone).
${JSON_USAGE}: {ok, lines, head, actions, files, start} or {ok, file, line, reason, missing}`;

/** `postern audit verify`: exit 0 when the chain holds, 1 naming the first broken line. */
export async function runAudit(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action !== "verify") throw new UsageError(action === undefined ? "give an action: verify" : `unknown action ${JSON.stringify(action)}`);
  const { values } = parseArgs({
    args: rest,
    options: { file: { type: "string" }, json: { type: "boolean", default: false } },
    strict: true,
    allowPositionals: false,
  });
  const file = values.file ?? cliDefaults().auditPath;
  const result = await verifyAuditLog(file).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") throw new PosternError("not-found", `no audit log at ${file}`);
    throw error;
  });
  if (values.json) {
    printJson(result);
    return result.ok ? 0 : 1;
  }
  if (result.ok) {
    const counts = Object.entries(result.actions).sort(([a], [b]) => a.localeCompare(b));
    const { start } = result;
    const from =
      result.files.length > 1 || !start.genesis
        ? `${result.files.length} files; the chain ${start.genesis ? "starts at its first line" : `starts at seq ${start.seq} in ${start.file} (earlier files, up to ${start.after}, were removed by retention)`}\n`
        : "";
    process.stdout.write(`ok, ${result.lines} lines, head ${result.head}\n${from}${counts.map(([action, n]) => `  ${String(n).padStart(6)}  ${action}\n`).join("")}`);
    return 0;
  }
  const where = result.reason === "missing-file" ? `${result.missing} is missing (before ${result.file})` : `line ${result.line}: ${result.reason}`;
  process.stdout.write(`${result.reason === "missing-file" ? file : result.file}: ${where}\n`);
  return 1;
}
