import { X509Certificate } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { AdminClient, PosternRequestError, type IssuedCertificateJson } from "../client/index.js";
import { PosternError } from "../errors.js";
import { KEY_TYPES_TEXT, keyTypeOf, newKeyWithCsr, parseKeyType, writePublicFile, writeSecretFile } from "./csr.js";
import { cliDefaults } from "./defaults.js";
import { JSON_USAGE, printJson, UsageError } from "./usage.js";

export const usage = `postern renew --cert FILE --key FILE [--ca FILE] [--new-key [--key-type T]] [--out DIR]
  --url URL            the gateway's admin API (default POSTERN_ADMIN_URL, else the configured admin listener)
  --cert FILE          the certificate chain to renew (it authenticates the request)
  --key FILE           its private key
  --ca FILE            CA bundle that issued the gateway's certificate (default <pki.dir>/ca-bundle.pem)
  --new-key            make a new key here (sent only as a CSR); default keeps the key
  --key-type T         the new key's type: ${KEY_TYPES_TEXT} (default the current key's)
  --out DIR            write <cert name> (and, with --new-key, <key name>) to DIR; default
                       replaces --cert (and --key) in place, each file atomically
Same identity, roles and profile; a revoked certificate cannot renew.
${JSON_USAGE}: {identity, serial, previousSerial, notAfter, files: {certificate, key, newKey}}`;


/** `postern renew`: exit 0 with the new certificate written, 1 when the gateway refuses. */
export async function runRenew(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      url: { type: "string" },
      cert: { type: "string" },
      key: { type: "string" },
      ca: { type: "string" },
      "new-key": { type: "boolean", default: false },
      "key-type": { type: "string" },
      out: { type: "string" },
      json: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.cert === undefined || values.key === undefined) throw new UsageError("--cert and --key are required");
  if (values["key-type"] !== undefined && !values["new-key"]) throw new UsageError("--key-type applies with --new-key only");
  const [certPem, keyPem, caPem] = await Promise.all([readFile(values.cert, "utf8"), readFile(values.key, "utf8"), readFile(values.ca ?? join(cliDefaults().pkiDir, "ca-bundle.pem"), "utf8")]);
  const current = new X509Certificate(certPem);
  const fresh = values["new-key"]
    ? await newKeyWithCsr(parseKeyType(values["key-type"], await keyTypeOf(keyPem)))
    : undefined;

  const client = new AdminClient({ url: values.url ?? cliDefaults().adminUrl, cert: certPem, key: keyPem, ca: caPem });
  let renewed: IssuedCertificateJson;
  try {
    renewed = await client.renew(fresh?.csrPem);
  } catch (error) {
    throw explainRefusal(error);
  } finally {
    await client.close();
  }

  const certOut = values.out === undefined ? values.cert : join(values.out, basename(values.cert));
  const keyOut = values.out === undefined ? values.key : join(values.out, basename(values.key));
  if (values.out !== undefined) await mkdir(values.out, { recursive: true });
  // Each file is replaced atomically, the pair is not: a crash between the two renames leaves
  // a mismatched pair in place. --out keeps the old pair untouched.
  if (fresh) await writeSecretFile(keyOut, fresh.keyPem);
  await writePublicFile(certOut, renewed.certificate);
  if (values.json) {
    printJson({
      identity: renewed.identity,
      serial: renewed.serial,
      previousSerial: current.serialNumber.toLowerCase(),
      notAfter: renewed.notAfter,
      files: { certificate: certOut, key: fresh ? keyOut : values.key, newKey: fresh !== undefined },
    });
    return 0;
  }
  process.stdout.write(
    `renewed ${renewed.identity}: serial ${renewed.serial} (was ${current.serialNumber.toLowerCase()}), valid until ${renewed.notAfter}\n`
    + `  certificate  ${certOut}\n`
    + `  key          ${fresh ? `${keyOut} (new)` : `${values.key} (unchanged)`}\n`,
  );
  return 0;
}

/** A refused handshake never reaches HTTP: say what that usually means. */
function explainRefusal(error: unknown): unknown {
  if (error instanceof PosternRequestError || error instanceof PosternError) return error;
  const code = (error as { code?: string }).code ?? "";
  if (/^(UND_ERR_SOCKET|ECONNRESET|EPIPE|ERR_SSL_|ERR_TLS_)/.test(code) || /alert|handshake|other side closed/i.test(String(error))) {
    return new PosternError("unauthenticated", `the gateway refused the TLS handshake (${code || (error as Error).message}): the certificate may be revoked, expired or from another CA`);
  }
  return error;
}
