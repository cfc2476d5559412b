import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { REVOCATION_REASON_NAMES, type AdminClient, type CertificateJson, type IssuedCertificateJson } from "../client/index.js";
import { environmentVariable } from "../config/index.js";
import { ADMIN_OPTIONS, ADMIN_USAGE, adminClient, withSecondFactor } from "./admin-options.js";
import { KEY_TYPES_TEXT, parseKeyType, writePublicFile, writeSecretFile } from "./csr.js";
import { parseDurationSeconds } from "./duration-flag.js";
import { JSON_USAGE, printJson, UsageError } from "./usage.js";

const REASONS: readonly string[] = REVOCATION_REASON_NAMES;

export const usage = `postern cert issue --csr FILE [--id ID] [--role R]... [--profile P] [--lifetime 12h] [--out FILE] [--json]
postern cert issue --p12 FILE --id ID (--password-file F | --password-env VAR) [--key-type T] [--role R]... [--profile P] [--lifetime D] [--json]
postern cert list [--status valid|revoked] [--id ID] [--expiring-within 7d] [--limit N] [--cursor C] [--all] [--json]
postern cert revoke (--serial HEX | --id IDENTITY) [--reason R] [--json]
postern cert renew-server [--keep-key]
  issue --csr          certify a CSR (the key stays with its owner); the chain goes to --out or stdout
  issue --p12          the gateway makes the key: a PKCS#12 bundle written to FILE (0600)
  --key-type T         ${KEY_TYPES_TEXT} (default P-256), with --p12
  --id ID              the identity (issue: default the CSR's SAN URI or CN; list: filter)
  --lifetime D         shortened to the profile's maximum
  list                 table of serial, identity, status, notAfter; --json for JSON;
                       --all follows every page, else --cursor C fetches the next one
  revoke --id          revokes every valid certificate of the identity (incident response)
  --reason R           ${REASONS.join(", ")} (default unspecified)
${JSON_USAGE}:
                       issue {serial, identity, roles, notAfter, certificate, file}; list {items, nextCursor};
                       revoke {revoked: [{serial, identity, revokedAt}]}
  renew-server         a new server certificate for the running gateway (1 year, recorded and
                       audited), written atomically to <pki.dir>/server.crt and server.key and
                       served to new handshakes at once; open connections stay; other replicas
                       sharing pki.dir pick the files up by themselves. Not with pki.readOnly
  --keep-key           certify the current server key again (default: a new key)
${ADMIN_USAGE}`;


const CERT_OPTIONS = {
  ...ADMIN_OPTIONS,
  id: { type: "string" },
  role: { type: "string", multiple: true },
  profile: { type: "string" },
  lifetime: { type: "string" },
  csr: { type: "string" },
  out: { type: "string" },
  p12: { type: "string" },
  "password-file": { type: "string" },
  "password-env": { type: "string" },
  "key-type": { type: "string" },
  status: { type: "string" },
  "expiring-within": { type: "string" },
  limit: { type: "string" },
  cursor: { type: "string" },
  all: { type: "boolean", default: false },
  json: { type: "boolean", default: false },
  serial: { type: "string" },
  reason: { type: "string" },
  "keep-key": { type: "boolean" },
} as const;

const ALLOWED: Record<string, readonly string[]> = {
  issue: ["id", "role", "profile", "lifetime", "csr", "out", "p12", "password-file", "password-env", "key-type"],
  list: ["id", "status", "expiring-within", "limit", "cursor", "all", "json"],
  revoke: ["id", "serial", "reason"],
  "renew-server": ["keep-key"],
};

type Values = ReturnType<typeof parse>;

function parse(action: string, args: string[]) {
  const { values } = parseArgs({ args, options: CERT_OPTIONS, strict: true, allowPositionals: false });
  const allowed = new Set([...Object.keys(ADMIN_OPTIONS), ...(ALLOWED[action] ?? []), "all", "json"]);
  for (const [key, value] of Object.entries(values)) {
    if (!allowed.has(key) && value !== undefined) throw new UsageError(`--${key} does not apply to cert ${action}`);
  }
  if (action !== "renew-server" && values["keep-key"]) throw new UsageError("--keep-key applies to cert renew-server only");
  if (action !== "list" && values.all) throw new UsageError("--all applies to cert list only");
  return values;
}

/** `postern cert issue|list|revoke|renew-server`: exit 0 on success, 1 when the admin API refuses. */
export async function runCert(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action !== "issue" && action !== "list" && action !== "revoke" && action !== "renew-server") {
    throw new UsageError(action === undefined ? "give an action: issue, list, revoke or renew-server" : `unknown action ${JSON.stringify(action)}`);
  }
  const values = parse(action, rest);
  const actions = { list, revoke, "renew-server": renewServer };
  const run = action === "issue" ? (values.p12 !== undefined ? issuePkcs12 : issueCsr) : actions[action];
  const prepared = await run(values);
  const client = await adminClient(values);
  try {
    return await withSecondFactor(client, values.otp, () => prepared(client));
  } finally {
    await client.close();
  }
}

/** Each action checks its flags and reads its files first, then talks to the admin API. */
type Prepared = (client: AdminClient) => Promise<number>;

function issueOptions(values: Values): Record<string, unknown> {
  return {
    ...(values.id !== undefined ? { identity: values.id } : {}),
    ...(values.role ? { roles: values.role } : {}),
    ...(values.profile !== undefined ? { profile: values.profile } : {}),
    ...(values.lifetime !== undefined ? { lifetime: parseDurationSeconds(values.lifetime, "--lifetime") } : {}),
  };
}

async function issueCsr(values: Values): Promise<Prepared> {
  if (values.csr === undefined) throw new UsageError("give --csr FILE (or --p12 FILE for a server-made key)");
  for (const flag of ["password-file", "password-env", "key-type"] as const) {
    if (values[flag] !== undefined) throw new UsageError(`--${flag} applies to --p12 only`);
  }
  const body = { csr: await readFile(values.csr, "utf8"), ...issueOptions(values) };
  return async (client) => {
    const issued = await client.issue(body);
    if (values.out !== undefined) await writePublicFile(values.out, issued.certificate);
    if (values.json) {
      printJson(issuedJson(issued, values.out ?? null));
      return 0;
    }
    if (values.out === undefined) process.stdout.write(issued.certificate);
    process.stderr.write(describeIssued(issued, values.out));
    return 0;
  };
}

async function issuePkcs12(values: Values): Promise<Prepared> {
  if (values.csr !== undefined || values.out !== undefined) throw new UsageError("--p12 writes its own file: drop --csr and --out");
  if (values.id === undefined) throw new UsageError("--p12 needs --id");
  if ((values["password-file"] === undefined) === (values["password-env"] === undefined)) {
    throw new UsageError("give exactly one of --password-file or --password-env");
  }
  const password = values["password-file"] !== undefined
    ? (await readFile(values["password-file"], "utf8")).replace(/\r?\n$/, "")
    : environmentVariable(values["password-env"]!);
  if (!password) throw new UsageError(`the PKCS#12 password from ${values["password-file"] ?? `$${values["password-env"]}`} is empty`);
  const body = { identity: values.id, password, keyType: parseKeyType(values["key-type"]), ...issueOptions(values) };
  const out = values.p12!;
  return async (client) => {
    const issued = await client.issuePkcs12(body);
    await writeSecretFile(out, Buffer.from(issued.pkcs12, "base64"));
    if (values.json) printJson(issuedJson(issued, out));
    else process.stdout.write(describeIssued(issued, `${out} (PKCS#12, 0600)`));
    return 0;
  };
}

/** What `cert issue --json` prints: the certificate chain in PEM, and the file written (if any). */
function issuedJson(issued: IssuedCertificateJson, file: string | null) {
  return { serial: issued.serial, identity: issued.identity, roles: issued.roles, notAfter: issued.notAfter, certificate: issued.certificate, file };
}

function describeIssued(issued: IssuedCertificateJson, where: string | undefined): string {
  return `issued ${issued.serial} for ${issued.identity} (roles ${issued.roles.join(",") || "none"}), valid until ${issued.notAfter}${where ? `, written to ${where}` : ""}\n`;
}

async function list(values: Values): Promise<Prepared> {
  if (values.status !== undefined && values.status !== "valid" && values.status !== "revoked") throw new UsageError("--status must be valid or revoked");
  if (values.limit !== undefined && !(/^\d{1,4}$/.test(values.limit) && Number(values.limit) >= 1 && Number(values.limit) <= 1000)) {
    throw new UsageError("--limit must be 1 to 1000");
  }
  if (values.all && values.cursor !== undefined) throw new UsageError("give --all or --cursor, not both");
  const query = new URLSearchParams();
  if (values.status !== undefined) query.set("status", values.status);
  if (values.id !== undefined) query.set("identity", values.id);
  if (values["expiring-within"] !== undefined) query.set("expiringWithin", `${parseDurationSeconds(values["expiring-within"], "--expiring-within")}s`);
  if (values.limit !== undefined) query.set("limit", values.limit);
  return async (client) => {
    const items: CertificateJson[] = [];
    let cursor = values.cursor;
    let next: string | undefined;
    do {
      const page = new URLSearchParams(query);
      if (cursor !== undefined) page.set("cursor", cursor);
      const answer = await client.listCertificates(page);
      items.push(...answer.items);
      next = answer.nextCursor;
      cursor = next;
    } while (values.all && next !== undefined);
    if (values.json) {
      process.stdout.write(JSON.stringify({ items, ...(next !== undefined ? { nextCursor: next } : {}) }, null, 2) + "\n");
      return 0;
    }
    process.stdout.write(table(items));
    if (next !== undefined) process.stderr.write(`more: --cursor ${next} (or --all)\n`);
    return 0;
  };
}

function table(items: readonly CertificateJson[]): string {
  const rows = [["SERIAL", "IDENTITY", "STATUS", "NOT AFTER"], ...items.map((i) => [i.serial, i.identity, i.status, i.notAfter])];
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c < 3 ? cell.padEnd(widths[c]!) : cell)).join("  ") + "\n").join("");
}

async function revoke(values: Values): Promise<Prepared> {
  if ((values.serial === undefined) === (values.id === undefined)) throw new UsageError("give exactly one of --serial or --id");
  const reason = values.reason ?? "unspecified";
  if (!REASONS.includes(reason)) throw new UsageError(`--reason must be one of ${REASONS.join(", ")}`);
  return async (client) => {
    if (values.serial !== undefined) {
      const record = await client.revoke(values.serial, reason);
      if (values.json) {
        printJson({ revoked: [{ serial: record.serial, identity: record.identity, revokedAt: record.revokedAt ?? null }] });
        return 0;
      }
      process.stdout.write(`revoked ${record.serial} (${record.identity}) at ${record.revokedAt ?? "?"}\n`);
      return 0;
    }
    const answer = await client.revokeIdentity(values.id!, reason);
    if (values.json) {
      printJson({ revoked: answer.revoked.map((serial) => ({ serial, identity: values.id!, revokedAt: null })) });
      return 0;
    }
    process.stdout.write(`revoked ${answer.revoked.length} certificate(s) of ${values.id}${answer.revoked.map((s) => `\n  ${s}`).join("")}\n`);
    return 0;
  };
}

async function renewServer(values: Values): Promise<Prepared> {
  return async (client) => {
    const renewed = await client.renewServerCertificate({ keepKey: values["keep-key"] === true });
    process.stdout.write(
      `renewed the server certificate: ${renewed.serial} (${renewed.keptKey ? "same key" : "new key"}), valid until ${renewed.notAfter}; ` +
        `new handshakes get it now (it replaces ${renewed.previousSerial}, which is not revoked and expires by itself)\n`,
    );
    return 0;
  };
}
