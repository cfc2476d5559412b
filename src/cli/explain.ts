import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import type { Explanation } from "../gateway/index.js";
import { ADMIN_OPTIONS, ADMIN_USAGE, adminClient } from "./admin-options.js";
import { JSON_USAGE, printJson, UsageError } from "./usage.js";

export const usage = `postern explain (--cert-file FILE | --identity ID [--role R]...) [--method POST] --path PATH [--json]
  --cert-file FILE     the client certificate to explain (PEM)
  --identity ID        or an identity (SAN URI or CN), skipping the certificate checks
  --role R             the identity's roles (repeatable)
  --method M           default POST
  --path PATH          e.g. /v1/messages/orders
${JSON_USAGE}: {allowed, checks: [{check, outcome, detail}], ...}
${ADMIN_USAGE}
Exit 0 when the message would be allowed, 1 when not.`;

export async function runExplain(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...ADMIN_OPTIONS,
      "cert-file": { type: "string" },
      identity: { type: "string" },
      role: { type: "string", multiple: true, default: [] },
      method: { type: "string", default: "POST" },
      path: { type: "string" },
      json: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (!values.path) throw new UsageError("--path is required");
  if (!values["cert-file"] === !values.identity) throw new UsageError("give exactly one of --cert-file or --identity");
  const client = await adminClient(values);
  try {
    const answer = (await client.call("POST", "/v1/explain", {
      ...(values["cert-file"] ? { certificate: await readFile(values["cert-file"], "utf8") } : {}),
      ...(values.identity ? { identity: values.identity, roles: values.role } : {}),
      method: values.method,
      path: values.path,
    })) as Explanation;
    if (values.json) {
      printJson(answer);
      return answer.allowed ? 0 : 1;
    }
    const width = Math.max(...answer.checks.map((c) => c.check.length));
    const mark = { pass: "ok  ", fail: "FAIL", skip: "-   " } as const;
    for (const c of answer.checks) process.stdout.write(`${mark[c.outcome]} ${c.check.padEnd(width)}  ${c.detail}\n`);
    process.stdout.write(answer.allowed ? "=> allowed\n" : "=> denied\n");
    return answer.allowed ? 0 : 1;
  } finally {
    await client.close();
  }
}
