import { mkdir } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { PASSPHRASE_ENV } from "../config/index.js";
import { PosternError } from "../errors.js";
import { caExists, initCa, PKI_FILES, pkiPaths } from "../pki/index.js";
import { KEY_TYPES_TEXT, parseKeyType } from "./csr.js";
import { cliDefaults } from "./defaults.js";
import { JSON_USAGE, printJson, UsageError } from "./usage.js";

export const usage = `postern init [options]
  --dir DIR               the PKI directory (default pki.dir from the configuration: POSTERN_PKI_DIR, else certs)
  --key-type T            CA key type: ${KEY_TYPES_TEXT} (default P-256)
  --root-days N           root CA lifetime in days (default 3650)
  --issuing-days N        issuing CA lifetime in days (default 1825, at most the root's)
  --root-subject DN       e.g. "CN=Acme Root CA,O=Acme" (default CN=Postern Root CA,O=Postern)
  --issuing-subject DN    e.g. "CN=Acme Issuing CA 1,O=Acme"
  --passphrase-file F     read the CA passphrase from F (created, 0600, when missing)
  --public-base-url URL   how relying parties reach the public listener: the issuing CA then names
                          URL/crl/root as its CRL distribution point (use the same pki.publicBaseUrl)
  --force                 replace an existing CA: nothing it issued is trusted any more
Without --passphrase-file the passphrase comes from ${PASSPHRASE_ENV}, else <dir>/${PKI_FILES.passphrase},
which is generated (0600) when missing. \`postern start\` issues the gateway's server certificate,
its forward-signing key and the demo and admin client certificates on first start.
${JSON_USAGE}: {dir, keyAlgorithm, root: {file, subject, notAfter}, issuing: {file, subject, notAfter}, files}`;

/** `postern init`: exit 0 with the files created, 1 when a CA exists (without --force). */
export async function runInit(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      dir: { type: "string" },
      "key-type": { type: "string" },
      "root-days": { type: "string" },
      "issuing-days": { type: "string" },
      "root-subject": { type: "string" },
      "issuing-subject": { type: "string" },
      "passphrase-file": { type: "string" },
      "public-base-url": { type: "string" },
      force: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const dir = values.dir ?? cliDefaults().pkiDir;
  const keyAlgorithm = parseKeyType(values["key-type"]);
  const rootDays = positiveDays(values["root-days"], "--root-days");
  const issuingDays = positiveDays(values["issuing-days"], "--issuing-days");
  if (!values.force && (await caExists(dir))) {
    throw new PosternError("conflict", `a CA already exists in ${dir}; pass --force to replace it (nothing it issued will be trusted any more)`);
  }
  // resolvePassphrase creates <dir> only, not the passphrase file's own directory.
  if (values["passphrase-file"] !== undefined) await mkdir(dirname(values["passphrase-file"]), { recursive: true, mode: 0o700 });
  const result = await initCa({
    dir,
    keyAlgorithm,
    force: values.force,
    ...(rootDays !== undefined ? { rootLifetimeDays: rootDays } : {}),
    ...(issuingDays !== undefined ? { issuingLifetimeDays: issuingDays } : {}),
    ...(values["root-subject"] !== undefined ? { rootSubject: values["root-subject"] } : {}),
    ...(values["issuing-subject"] !== undefined ? { issuingSubject: values["issuing-subject"] } : {}),
    ...(values["passphrase-file"] !== undefined ? { passphraseFile: values["passphrase-file"] } : {}),
    ...(values["public-base-url"] !== undefined ? { publicBaseUrl: publicBaseUrl(values["public-base-url"]) } : {}),
  });
  const paths = pkiPaths(dir);
  if (values.json) {
    printJson({
      dir,
      keyAlgorithm,
      root: { file: paths.rootCert, subject: result.root.cert.subject, notAfter: result.root.cert.notAfter.toISOString() },
      issuing: { file: paths.issuingCert, subject: result.issuer.cert.subject, notAfter: result.issuer.cert.notAfter.toISOString() },
      files: result.createdFiles,
    });
    return 0;
  }
  const until = (date: Date) => date.toISOString().slice(0, 10);
  const lines = [
    `Created a ${keyAlgorithm} CA in ${dir}:`,
    `  root CA      ${paths.rootCert} (${result.root.cert.subject}, until ${until(result.root.cert.notAfter)})`,
    `  issuing CA   ${paths.issuingCert} (${result.issuer.cert.subject}, until ${until(result.issuer.cert.notAfter)})`,
    `  keys         ${paths.rootKey}, ${paths.issuingKey} (encrypted, 0600)`,
    `  trust bundle ${paths.caBundle}`,
  ];
  lines.push(`  root CRL     ${paths.rootCrl} (signed now, valid one year: the root key may go offline)`);
  const caFiles = new Set([paths.rootCert, paths.rootKey, paths.issuingCert, paths.issuingKey, paths.caBundle, paths.rootCrl]);
  const generated = result.createdFiles.find((f) => !caFiles.has(f));
  if (generated) lines.push(`Generated the CA passphrase in ${generated} (0600): back it up and keep it secret.`);
  const passphraseFile = values["passphrase-file"];
  if (passphraseFile !== undefined && resolve(passphraseFile) !== resolve(paths.passphrase)) {
    lines.push(`postern start reads the passphrase from ${PASSPHRASE_ENV} or ${paths.passphrase}: export ${PASSPHRASE_ENV}="$(cat ${passphraseFile})"`);
  }
  lines.push(
    "Next: postern start issues the gateway's server certificate, its forward-signing key and the",
    "demo and admin client certificates on first start. The root key is needed only to sign a new",
    `issuing CA (and the root's CRL): you may move ${paths.rootKey} offline once the gateway has started.`,
  );
  process.stdout.write(lines.join("\n") + "\n");
  return 0;
}

function publicBaseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError("--public-base-url must be a URL, e.g. http://postern.internal:9464");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError("--public-base-url must be http:// or https://");
  return text.replace(/\/$/, "");
}

function positiveDays(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,6}$/.test(text) || Number(text) < 1) throw new UsageError(`${flag} must be a whole number of days, at least 1`);
  return Number(text);
}
