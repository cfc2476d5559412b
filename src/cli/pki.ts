import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { openPkiOffline, reissueBuiltins, openArchive, sealArchive, restoreBackup, takeBackup } from "../pki/index.js";
import { ConfigError, loadConfig, type PosternConfig } from "../config/index.js";
import { PosternError } from "../errors.js";
import { writeFileAtomic } from "../storage/index.js";
import { JSON_USAGE, printJson, UsageError } from "./usage.js";


export const usage = `postern pki backup --out FILE [--json]
postern pki restore --file FILE [--force] [--json]
postern pki reissue [--only server,demo,admin] [--public-base-url URL] [--json]
  backup --out FILE    write every certificate (revoked ones with time and reason), live
                       enrollment tokens, the CRL state and the audit log's head to FILE (0600),
                       encrypted with the CA passphrase (AES-256-GCM, key from scrypt)
  restore --file FILE  put an archive back into the store (after Redis lost its data, or onto
                       a new Redis): adds what the store lacks, never removes anything
  --force              restore an archive older than the trust ledger anyway: the ledger's
                       revocations stay enforced, certificates it recorded that are still
                       missing are accepted as lost
  reissue              new keys and certificates for the gateway's server certificate and the
                       demo and admin client certificates (default all three), each recorded
                       and audited; the ones they replace are revoked (superseded). Stop every
                       replica first and start them again afterwards.
  --public-base-url    the new URL the re-issued certificates name for CRL and OCSP (then set
                       pki.publicBaseUrl to it on every replica)
Reads the gateway's configuration (POSTERN_CONFIG, POSTERN_REDIS_URL, POSTERN_PKI_DIR, ...) and
the CA passphrase as postern start does. In Redis mode both run beside the gateways; in embedded
mode a backup reads beside a running gateway, a restore needs it stopped.
Without any backup, make one of the store as it is now and restore that with --force: Postern
then accepts what was lost and serves again, revoked serials still refused.
${JSON_USAGE}:
                       backup {file, certificates, revoked, tokens, crlNumber, store};
                       restore {file, takenAt, store, certificatesAdded, revocationsApplied, tokensAdded, acceptedLost};
                       reissue {issued: [{kind, serial}], superseded, publicBaseUrl}`;

/** `postern pki backup|restore|reissue`: exit 0 on success, 1 on a refusal or failure, 2 on a usage error. */
export async function runPki(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action !== "backup" && action !== "restore" && action !== "reissue") {
    throw new UsageError(action === undefined ? "give an action: backup, restore or reissue" : `unknown action ${JSON.stringify(action)}`);
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      out: { type: "string" },
      file: { type: "string" },
      force: { type: "boolean", default: false },
      only: { type: "string" },
      "public-base-url": { type: "string" },
      json: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const given = Object.entries(values).filter(([k, v]) => v !== undefined && k !== "json" && !(k === "force" && v === false)).map(([k]) => k);
  const allowed = { backup: ["out"], restore: ["file", "force"], reissue: ["only", "public-base-url"] }[action];
  const stray = given.find((k) => !allowed.includes(k));
  if (stray) throw new UsageError(`--${stray} does not apply to pki ${action}`);
  if (action === "backup" && values.out === undefined) throw new UsageError("backup needs --out FILE");
  if (action === "restore" && values.file === undefined) throw new UsageError("restore needs --file FILE");
  let config: Readonly<PosternConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
  if (action === "reissue") return reissue(config, kindsOf(values.only), values["public-base-url"], values.json);
  return action === "backup" ? backup(config, values.out!, values.json) : restore(config, values.file!, values.force, values.json);
}

const KINDS = ["server", "demo", "admin"] as const;


function kindsOf(only: string | undefined): Array<(typeof KINDS)[number]> {
  if (only === undefined) return [...KINDS];
  const kinds = only.split(",").map((k) => k.trim());
  for (const k of kinds) if (!(KINDS as readonly string[]).includes(k)) throw new UsageError(`--only takes ${KINDS.join(", ")}`);
  return kinds as Array<(typeof KINDS)[number]>;
}

async function reissue(config: Readonly<PosternConfig>, kinds: Array<(typeof KINDS)[number]>, url: string | undefined, json: boolean): Promise<number> {
  if (url !== undefined && !/^https?:\/\/[^/]+(\/.*)?$/.test(url)) throw new UsageError("--public-base-url must be an http:// or https:// URL");
  const report = await reissueBuiltins(config, { kinds, actor: "cli", ...(url !== undefined ? { moveToPublicBaseUrl: url.replace(/\/$/, "") } : {}) });
  const lines = report.issued.map((i) => `re-issued ${i.kind} with a new key: ${i.serial}`);
  if (report.superseded.length > 0) lines.push(`revoked as superseded: ${report.superseded.join(", ")}`);
  if (url !== undefined) lines.push(`the certificates name ${report.publicBaseUrl} now: set pki.publicBaseUrl (POSTERN_PUBLIC_BASE_URL) to it on every replica`);
  if (kinds.includes("server")) lines.push("Start the gateways again to serve the new server certificate.");
  if (json) {
    printJson({ issued: report.issued.map((i) => ({ kind: i.kind, serial: i.serial })), superseded: report.superseded, publicBaseUrl: report.publicBaseUrl });
    return 0;
  }
  process.stdout.write(lines.join("\n") + "\n");
  return 0;
}

async function backup(config: Readonly<PosternConfig>, out: string, json: boolean): Promise<number> {
  const pki = await openPkiOffline(config, { readOnly: true });
  try {
    const head = pki.audit.head();
    const archive = await takeBackup({
      store: pki.store,
      ledger: pki.ledger,
      auditHead: head.seq > 0 ? { path: config.pki.auditLogPath ?? `${config.data.dir}/audit.jsonl`, ...head } : null,
      now: Date.now,
    });
    await writeFileAtomic(out, sealArchive(archive, pki.passphrase), { mode: 0o600 });
    const revoked = archive.certificates.filter((c) => c.status === "revoked").length;
    await pki.audit.append({ actor: "cli", action: "pki.backup", subject: archive.pkiId, details: { certificates: archive.certificates.length, revoked, tokens: archive.tokens.length } });
    if (json) {
      printJson({ file: out, certificates: archive.certificates.length, revoked, tokens: archive.tokens.length, crlNumber: archive.crl?.crlNumber ?? null, store: pki.storeName });
      return 0;
    }
    process.stdout.write(
      `wrote ${out} (0600, encrypted with the CA passphrase): ${archive.certificates.length} certificates (${revoked} revoked), ` +
        `${archive.tokens.length} live tokens, cRLNumber ${archive.crl?.crlNumber ?? "none"}, from ${pki.storeName}\n`,
    );
    return 0;
  } finally {
    await pki.close();
  }
}

async function restore(config: Readonly<PosternConfig>, file: string, force: boolean, json: boolean): Promise<number> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch {
    throw new PosternError("not-found", `cannot read ${file}`);
  }
  const pki = await openPkiOffline(config, { readOnly: false });
  try {
    const archive = openArchive(bytes, pki.passphrase);
    const report = await restoreBackup({ archive, store: pki.store, ledger: pki.ledger, audit: pki.audit, force, actor: "cli", now: Date.now });
    if (json) {
      printJson({
        file,
        takenAt: archive.createdAt,
        store: pki.storeName,
        certificatesAdded: report.certificatesAdded,
        revocationsApplied: report.revocationsApplied,
        tokensAdded: report.tokensAdded,
        acceptedLost: report.acceptedLost,
      });
      return 0;
    }
    const lines = [
      `restored ${file} (taken ${archive.createdAt}) into ${pki.storeName}: ${report.certificatesAdded} certificates added, ` +
        `${report.revocationsApplied} revocations applied, ${report.tokensAdded} tokens added`,
    ];
    if (report.acceptedLost.length > 0) lines.push(`accepted as lost (--force): ${report.acceptedLost.length} certificate(s), e.g. ${report.acceptedLost.slice(0, 3).join(", ")}`);
    lines.push("Running gateways see the restored state within 10 s (or at once when Redis reconnects).");
    process.stdout.write(lines.join("\n") + "\n");
    return 0;
  } finally {
    await pki.close();
  }
}
