/**
 * What the gateway's TLS listeners serve, read again from the PKI directory for a reload: the
 * server certificate chain and key, and the CA bundle that clients must chain to. A reload
 * applies all three or none: a candidate is refused, naming the file and the reason, when a
 * PEM does not parse, the key does not match the certificate, the certificate is expired or
 * not yet valid, it does not chain to the bundle, or the bundle holds something other than
 * unexpired CA certificates. `checkServingMaterial` is the pure rule; `readServingMaterial` reads
 * the files for it.
 */
import { X509Certificate, createHash, createPrivateKey, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { plainPrivateKeyPem } from "../keys/index.js";
import { canonicalSerial } from "../serial.js";

/** The three files a reload reads. */
export interface ServingFiles {
  serverCert: string;
  serverKey: string;
  caBundle: string;
}

/** Which part of the serving material a refused reload names (a bounded metric label). */
export type ServingPart = "server_certificate" | "server_key" | "ca_bundle";

/** Material the listeners can serve, checked. */
export interface ServingMaterial {
  /** Leaf first, then its intermediates (PEM). */
  serverCertChainPem: string;
  /** Unencrypted PKCS#8 PEM, in memory only. */
  serverKeyPem: string;
  caBundlePem: string;
  /** The leaf's serial (canonical lower-case hex) and notAfter. */
  serial: string;
  notAfterMs: number;
  /** SHA-256 over the three files as read: equal inputs, equal digest (a reload of unchanged files is a no-op). */
  inputDigest: string;
}

/** Why a candidate was refused: the part, the file (its path) and a reason for the log. */
export interface ServingRefusal {
  part: ServingPart;
  file: string;
  reason: string;
}

export type ServingCheck = { ok: true; material: ServingMaterial } | ({ ok: false; inputDigest: string } & ServingRefusal);

/** The raw inputs: each file's text, or undefined when it could not be read. */
export interface ServingInputs {
  files: ServingFiles;
  serverCertPem: string | undefined;
  serverKeyPem: string | undefined;
  caBundlePem: string | undefined;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const MAX_CHAIN_DEPTH = 5;

/** SHA-256 over the inputs as read (an unreadable file counts as its absence). */
export function servingInputDigest(inputs: Omit<ServingInputs, "files">): string {
  const hash = createHash("sha256");
  for (const text of [inputs.serverCertPem, inputs.serverKeyPem, inputs.caBundlePem]) hash.update(text === undefined ? "\u0000absent" : `${text.length}:${text}`);
  return hash.digest("hex");
}

/**
 * Checks candidate serving material (see the file header). `passphrase` decrypts an encrypted
 * PKCS#8 key (the PKI's own); an unencrypted key is read as it is. Never throws.
 */
export function checkServingMaterial(inputs: ServingInputs, passphrase: string, nowMs: number): ServingCheck {
  const inputDigest = servingInputDigest(inputs);
  const refuse = (part: ServingPart, reason: string): ServingCheck => {
    const file = part === "ca_bundle" ? inputs.files.caBundle : part === "server_key" ? inputs.files.serverKey : inputs.files.serverCert;
    return { ok: false, inputDigest, part, file, reason };
  };
  const { serverCertPem, serverKeyPem, caBundlePem } = inputs;
  if (caBundlePem === undefined) return refuse("ca_bundle", "cannot be read");
  const authorities = parseCertificates(caBundlePem);
  if (typeof authorities === "string") return refuse("ca_bundle", authorities);
  for (const ca of authorities) {
    if (!ca.ca) return refuse("ca_bundle", `holds a certificate that is not a CA (${ca.subject.replace(/\n/g, ", ")})`);
    // A CA that is not valid yet may be there on purpose (a rotation announced ahead); an expired one is a mistake.
    if (Date.parse(ca.validTo) <= nowMs) return refuse("ca_bundle", `holds an expired CA certificate (${ca.subject.replace(/\n/g, ", ")}, notAfter ${ca.validTo})`);
  }

  if (serverCertPem === undefined) return refuse("server_certificate", "cannot be read");
  const chain = parseCertificates(serverCertPem);
  if (typeof chain === "string") return refuse("server_certificate", chain);
  const leaf = chain[0]!;
  if (leaf.ca) return refuse("server_certificate", "starts with a CA certificate, not the server's own");
  const validity = validityProblem(leaf, nowMs);
  if (validity) return refuse("server_certificate", `is ${validity} (notBefore ${leaf.validFrom}, notAfter ${leaf.validTo})`);
  if (!chainsTo(leaf, chain.slice(1), authorities)) return refuse("server_certificate", `does not chain to a CA of ${basename(inputs.files.caBundle)}`);

  if (serverKeyPem === undefined) return refuse("server_key", "cannot be read");
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: serverKeyPem, format: "pem", passphrase });
  } catch {
    return refuse("server_key", "is not a readable private key (bad PEM, or encrypted with another passphrase)");
  }
  if (key.type !== "private" || !leaf.checkPrivateKey(key)) return refuse("server_key", `does not match the certificate in ${basename(inputs.files.serverCert)}`);

  return {
    ok: true,
    material: {
      serverCertChainPem: chain.map((c) => c.toString()).join(""),
      serverKeyPem: plainPrivateKeyPem(key),
      caBundlePem,
      serial: canonicalSerial(leaf.serialNumber),
      notAfterMs: Date.parse(leaf.validTo),
      inputDigest,
    },
  };
}

/** Reads the three files and checks them (`checkServingMaterial`); never throws. */
export async function readServingMaterial(files: ServingFiles, passphrase: string, nowMs: number): Promise<ServingCheck> {
  const read = (path: string) => readFile(path, "utf8").catch(() => undefined);
  const [serverCertPem, serverKeyPem, caBundlePem] = await Promise.all([read(files.serverCert), read(files.serverKey), read(files.caBundle)]);
  return checkServingMaterial({ files, serverCertPem, serverKeyPem, caBundlePem }, passphrase, nowMs);
}

/** The PEM's certificates, or why there are none usable. */
function parseCertificates(pem: string): X509Certificate[] | string {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) return "holds no PEM certificate";
  const certificates: X509Certificate[] = [];
  for (const [index, block] of blocks.entries()) {
    try {
      certificates.push(new X509Certificate(block));
    } catch {
      return `certificate ${index + 1} is not valid PEM/DER`;
    }
  }
  return certificates;
}

function validityProblem(cert: X509Certificate, nowMs: number): string | undefined {
  if (Date.parse(cert.validTo) <= nowMs) return "expired";
  if (Date.parse(cert.validFrom) > nowMs) return "not yet valid";
  return undefined;
}

/** Whether `leaf` reaches a CA of `authorities`, through the intermediates sent with it if need be (signatures checked). */
function chainsTo(leaf: X509Certificate, intermediates: X509Certificate[], authorities: X509Certificate[]): boolean {
  let current = leaf;
  for (let depth = 0; depth < MAX_CHAIN_DEPTH; depth++) {
    const signedBy = (ca: X509Certificate) => current.checkIssued(ca) && current.verify(ca.publicKey);
    if (authorities.some(signedBy)) return true;
    const next = intermediates.find(signedBy);
    if (!next) return false;
    current = next;
  }
  return false;
}
