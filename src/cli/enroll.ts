import { X509Certificate } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { AdminClient, type IssuedCertificateJson } from "../client/index.js";
import { PosternError } from "../errors.js";
import { KEY_TYPES_TEXT, newKeyWithCsr, parseKeyType, refuseExisting, writePublicFile, writeSecretFile } from "./csr.js";
import { cliDefaults } from "./defaults.js";
import { JSON_USAGE, printJson, UsageError } from "./usage.js";

export const usage = `postern enroll --token T (--ca FILE | --ca-url URL) [options]
  --url URL            the gateway's admin API (default POSTERN_ADMIN_URL, else the configured admin listener)
  --token T            the enrollment token from \`postern token create\` (or --token-file F)
  --token-file F       read the token from F instead (keeps it out of the process list)
  --ca FILE            CA bundle to trust the gateway with; copied to <out>/ca-bundle.pem
  --ca-url URL         or fetch the bundle from the public listener (http://host:9464/ca.pem);
                       compare the printed root fingerprint with the operator's
  --out DIR            where to write <name>.key (0600), <name>.crt and ca-bundle.pem (default certs)
  --name NAME          file name stem (default the last segment of --id, else "client")
  --id IDENTITY        the identity to ask for; default the one the token is bound to
  --key-type T         ${KEY_TYPES_TEXT} (default P-256)
  --force              replace existing <name>.key and <name>.crt
${JSON_USAGE}: {identity, roles, serial, notAfter, files: {key, certificate, caBundle}}`;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;


/** `postern enroll`: exit 0 with the files written, 1 when the gateway refuses the token or CSR. */
export async function runEnroll(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      url: { type: "string" },
      token: { type: "string" },
      "token-file": { type: "string" },
      ca: { type: "string" },
      "ca-url": { type: "string" },
      out: { type: "string", default: "certs" },
      name: { type: "string" },
      id: { type: "string" },
      "key-type": { type: "string" },
      force: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if ((values.token === undefined) === (values["token-file"] === undefined)) throw new UsageError("give exactly one of --token or --token-file");
  if ((values.ca === undefined) === (values["ca-url"] === undefined)) throw new UsageError("give exactly one of --ca or --ca-url");
  const keyType = parseKeyType(values["key-type"]);
  const name = values.name ?? values.id?.split("/").filter((s) => s !== "").pop() ?? "client";
  if (!NAME.test(name)) throw new UsageError("--name must be 1-64 letters, digits, . _ - (or give --name when --id has no usable last segment)");
  const token = values.token ?? (await readFile(values["token-file"]!, "utf8")).trim();
  const keyPath = join(values.out, `${name}.key`);
  const certPath = join(values.out, `${name}.crt`);
  const bundlePath = join(values.out, "ca-bundle.pem");
  if (!values.force) await refuseExisting([keyPath, certPath], "choose another --name or pass --force");

  const caPem = values.ca !== undefined ? await readFile(values.ca, "utf8") : await fetchCaBundle(values["ca-url"]!);
  const { keyPem, csrPem } = await newKeyWithCsr(keyType, values.id);
  const client = new AdminClient({ url: values.url ?? cliDefaults().adminUrl, ca: caPem });
  let enrolled: IssuedCertificateJson;
  try {
    enrolled = await client.enroll(token, csrPem);
  } finally {
    await client.close();
  }
  await mkdir(values.out, { recursive: true });
  await writeSecretFile(keyPath, keyPem);
  await writePublicFile(certPath, enrolled.certificate);
  if (values.ca === undefined || resolve(values.ca) !== resolve(bundlePath)) await writePublicFile(bundlePath, caPem);
  if (values.json) {
    printJson({
      identity: enrolled.identity,
      roles: enrolled.roles,
      serial: enrolled.serial,
      notAfter: enrolled.notAfter,
      files: { key: keyPath, certificate: certPath, caBundle: bundlePath },
    });
    return 0;
  }
  process.stdout.write(
    `enrolled ${enrolled.identity} (roles ${enrolled.roles.join(",") || "none"}), serial ${enrolled.serial}, valid until ${enrolled.notAfter}\n`
    + `  key          ${keyPath} (0600, never left this machine)\n`
    + `  certificate  ${certPath}\n`
    + `  CA bundle    ${bundlePath}\n`,
  );
  return 0;
}

/** Fetches /ca.pem and prints the root's fingerprint, since plain HTTP proves nothing about who answered. */
async function fetchCaBundle(url: string): Promise<string> {
  const response = await fetch(url);
  const text = await response.text();
  if (!response.ok || !text.includes("-----BEGIN CERTIFICATE-----")) {
    throw new PosternError("not-found", `${url} answered ${response.status} without a PEM bundle`);
  }
  const certs = text.split(/(?=-----BEGIN CERTIFICATE-----)/).filter((p) => p.includes("BEGIN CERTIFICATE"));
  const root = new X509Certificate(certs.at(-1)!);
  process.stderr.write(`fetched the CA bundle from ${url}; root ${root.subject.replace(/\n/g, ", ")} SHA-256 ${root.fingerprint256}\n`);
  return text;
}
