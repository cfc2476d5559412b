/**
 * The check a TLS reload runs on candidate files, on material made by openssl: a good pair is
 * accepted (plain or passphrase-encrypted key), and each kind of broken candidate is refused
 * naming its part and file, never throwing.
 */
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { checkServingMaterial, type ServingInputs } from "../../../src/pki/ca/serving-material.js";
import { canonicalSerial } from "../../../src/pki/serial.js";
import { runTool } from "../../helpers/process.js";

const dir = await mkdtemp(join(tmpdir(), "postern-serving-"));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);

async function openssl(...args: string[]): Promise<void> {
  const result = await runTool("openssl", args);
  if (result.code !== 0) throw new Error(`openssl ${args.join(" ")}: ${result.stderr}`);
}
const newKey = (name: string) => openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", at(name));
async function selfSignedCa(name: string): Promise<void> {
  await newKey(`${name}.key`);
  await openssl("req", "-x509", "-new", "-key", at(`${name}.key`), "-subj", `/CN=${name}`, "-days", "30", "-addext", "basicConstraints=critical,CA:TRUE", "-out", at(`${name}.crt`));
}
async function signed(name: string, ca: string, ext: string, days = 10): Promise<void> {
  await newKey(`${name}.key`);
  await openssl("req", "-new", "-key", at(`${name}.key`), "-subj", `/CN=${name}`, "-out", at(`${name}.csr`));
  await writeFile(at(`${name}.ext`), ext);
  await openssl("x509", "-req", "-in", at(`${name}.csr`), "-CA", at(`${ca}.crt`), "-CAkey", at(`${ca}.key`), "-days", String(days), "-extfile", at(`${name}.ext`), "-out", at(`${name}.crt`));
}

await selfSignedCa("root");
await signed("issuing", "root", "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n", 20);
await signed("server", "issuing", "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n");
await selfSignedCa("foreign");
await signed("stranger", "foreign", "subjectAltName=DNS:localhost\n");
await openssl("pkcs8", "-topk8", "-in", at("server.key"), "-v2", "aes-256-cbc", "-passout", "pass:sesame", "-out", at("server-encrypted.key"));

const text = (name: string) => readFile(at(name), "utf8");
const files = { serverCert: "/pki/server.crt", serverKey: "/pki/server.key", caBundle: "/pki/ca-bundle.pem" };
const good: ServingInputs = {
  files,
  serverCertPem: (await text("server.crt")) + (await text("issuing.crt")),
  serverKeyPem: await text("server.key"),
  caBundlePem: (await text("issuing.crt")) + (await text("root.crt")),
};
const leaf = new X509Certificate(await text("server.crt"));
const now = Date.now();

t.test("a good pair chaining to the bundle is accepted, with its serial and notAfter", async (t) => {
  const check = checkServingMaterial(good, "unused", now);
  if (!check.ok) throw new Error(check.reason);
  t.equal(check.material.serial, canonicalSerial(leaf.serialNumber));
  t.equal(check.material.notAfterMs, Date.parse(leaf.validTo));
  t.match(check.material.serverKeyPem, /^-----BEGIN PRIVATE KEY-----/, "the key in clear, for the secure context only");
  t.equal(checkServingMaterial(good, "unused", now).ok && check.material.inputDigest, (checkServingMaterial(good, "x", now) as { material: { inputDigest: string } }).material.inputDigest, "equal inputs, equal digest");
});

t.test("a key encrypted with the CA passphrase is read; another passphrase is refused as server_key", async (t) => {
  const encrypted = { ...good, serverKeyPem: await text("server-encrypted.key") };
  t.equal(checkServingMaterial(encrypted, "sesame", now).ok, true);
  t.match(checkServingMaterial(encrypted, "wrong", now), { ok: false, part: "server_key", file: files.serverKey, reason: /passphrase/ });
});

t.test("each broken candidate is refused, naming the part and the file", async (t) => {
  const cases: Array<[string, Partial<ServingInputs>, number, object]> = [
    ["a certificate that is not PEM", { serverCertPem: "not a certificate\n" }, now, { part: "server_certificate", file: files.serverCert, reason: /no PEM certificate/ }],
    ["a damaged certificate", { serverCertPem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" }, now, { part: "server_certificate", reason: /not valid/ }],
    ["a key that is not PEM", { serverKeyPem: "garbage" }, now, { part: "server_key", file: files.serverKey }],
    ["a key that does not match", { serverKeyPem: await text("stranger.key") }, now, { part: "server_key", reason: /does not match the certificate in server\.crt/ }],
    ["an expired certificate", {}, Date.parse(leaf.validTo) + 1000, { part: "server_certificate", reason: /expired/ }],
    ["a certificate not yet valid", {}, Date.parse(leaf.validFrom) - 60_000, { part: "server_certificate", reason: /not yet valid/ }],
    ["a certificate of another CA", { serverCertPem: await text("stranger.crt"), serverKeyPem: await text("stranger.key") }, now, { part: "server_certificate", reason: /does not chain to a CA of ca-bundle\.pem/ }],
    ["a chain that starts with a CA", { serverCertPem: await text("issuing.crt"), serverKeyPem: await text("issuing.key") }, now, { part: "server_certificate", reason: /CA certificate/ }],
    ["a bundle holding an expired CA", {}, Date.parse(new X509Certificate(await text("issuing.crt")).validTo) + 1000, { part: "ca_bundle", reason: /expired CA/ }],
    ["a bundle holding a leaf", { caBundlePem: good.caBundlePem + (await text("server.crt")) }, now, { part: "ca_bundle", file: files.caBundle, reason: /not a CA/ }],
    ["a bundle that is not PEM", { caBundlePem: "nothing" }, now, { part: "ca_bundle", reason: /no PEM certificate/ }],
    ["a missing bundle", { caBundlePem: undefined }, now, { part: "ca_bundle", reason: /cannot be read/ }],
    ["a missing key", { serverKeyPem: undefined }, now, { part: "server_key", reason: /cannot be read/ }],
  ];
  for (const [name, change, at, refusal] of cases) {
    t.match(checkServingMaterial({ ...good, ...change }, "unused", at), { ok: false, ...refusal }, name);
  }
});
