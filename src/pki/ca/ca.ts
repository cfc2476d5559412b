/**
 * The two-level CA: an offline-capable root and an online issuing (intermediate) CA. Private
 * keys are PKCS#8 encrypted with the CA passphrase (AES-256-CBC, PBES2) and written 0600.
 * `initCa` never overwrites an existing CA unless told to (`force`).
 */
import { mkdir } from "node:fs/promises";
import type { KeyObject } from "node:crypto";
import { PosternError } from "../../errors.js";
import { type Bytes, x509 } from "../der/index.js";
import {
  PKI_FILES,
  PUBLIC_MODE,
  SECRET_MODE,
  exists,
  findOrMakePassphrase,
  pkiPaths,
  readText,
  writePlannedFiles,
  type PlannedFile,
} from "./ca-files.js";
import { buildRootCrl } from "../status/index.js";
import { type IssuingCa, tbsChildren, KEY_USAGE, authorityKeyIdentifier, basicConstraints, crlDistributionPoint, derToPem, encodeName, keyIdentifierOf, keyUsage, randomSerial, signCertificate, subjectKeyIdentifier } from "../issue/index.js";
import {
  decryptPrivateKeyPem,
  encryptPrivateKeyPem,
  generateKeyPair,
  signatureSchemeFor,
  spkiOf,
  toPrivateCryptoKey,
  type KeyAlgorithm,
} from "../keys/index.js";

export type { IssuingCa } from "../issue/index.js";

const DAY_MS = 86_400_000;

export interface InitCaOptions {
  dir: string;
  /** CA key type, default P-256. */
  keyAlgorithm?: KeyAlgorithm;
  /** Default 3650 (10 years). */
  rootLifetimeDays?: number;
  /** Default 1825 (5 years); capped by the root's lifetime. */
  issuingLifetimeDays?: number;
  /** RFC 4514-style, e.g. "CN=Acme Root CA, O=Acme"; default "O=Postern, CN=Postern Root CA". */
  rootSubject?: string;
  issuingSubject?: string;
  /** Else `passphraseFile`, else POSTERN_CA_PASSPHRASE, else `<dir>/ca-passphrase` (generated). */
  passphrase?: string;
  passphraseFile?: string;
  env?: Readonly<Record<string, string | undefined>>;
  /** Replace an existing CA. Without it an existing CA is a `conflict`. */
  force?: boolean;
  now?: () => number;
}

export interface CaMaterial {
  root: { cert: x509.X509Certificate };
  issuer: IssuingCa;
  /** Issuing CA then root: the trust bundle for TLS `ca`. */
  caBundlePem: string;
  rootCertPem: string;
  issuingCertPem: string;
}

export interface InitCaResult extends CaMaterial {
  passphrase: string;
  createdFiles: string[];
}

/** A CA made in memory: its material, root key, and the files that would hold it. */
export interface CreatedCa extends CaMaterial {
  passphrase: string;
  rootKey: KeyObject;
  /** Keys, certificates, bundle, root CRL (and a generated passphrase file first), in write order. */
  files: PlannedFile[];
}

/**
 * Makes a root and issuing CA in memory and plans their files; writes nothing. With
 * `publicBaseUrl`, the issuing CA names where the root's CRL is (`<url>/crl/root`), so
 * relying parties that follow CDPs find it.
 */
export async function createCa(opts: InitCaOptions & { publicBaseUrl?: string | undefined }): Promise<CreatedCa> {
  const paths = pkiPaths(opts.dir);
  const rootName = subjectName(opts.rootSubject, "Postern Root CA");
  const issuingName = subjectName(opts.issuingSubject, "Postern Issuing CA 1");
  const algorithm = opts.keyAlgorithm ?? "P-256";
  const nowMs = (opts.now ?? Date.now)();
  const { passphrase, newFile } = await findOrMakePassphrase(opts);
  const [rootKeys, issuingKeys] = await Promise.all([generateKeyPair(algorithm), generateKeyPair(algorithm)]);
  const rootNotAfter = nowMs + (opts.rootLifetimeDays ?? 3650) * DAY_MS;
  const rootSpki = spkiOf(rootKeys.publicKey);
  const rootKeyId = keyIdentifierOf(rootSpki);
  const rootDer = caCertificate({
    issuerName: rootName, subjectName: rootName, spki: rootSpki, keyId: rootKeyId, authorityKeyId: rootKeyId,
    pathLength: 1, notBeforeMs: nowMs - 60_000, notAfterMs: rootNotAfter, signer: rootKeys.privateKey,
  });
  const issuingSpki = spkiOf(issuingKeys.publicKey);
  const issuingDer = caCertificate({
    issuerName: rootName, subjectName: issuingName,
    spki: issuingSpki, keyId: keyIdentifierOf(issuingSpki), authorityKeyId: rootKeyId, pathLength: 0,
    notBeforeMs: nowMs - 60_000, notAfterMs: Math.min(nowMs + (opts.issuingLifetimeDays ?? 1825) * DAY_MS, rootNotAfter),
    signer: rootKeys.privateKey,
    ...(opts.publicBaseUrl !== undefined ? { crlUrl: `${opts.publicBaseUrl}/crl/root` } : {}),
  });
  const rootCertPem = derToPem(rootDer);
  const issuingCertPem = derToPem(issuingDer);
  const caBundlePem = issuingCertPem + rootCertPem;
  const root = { cert: new x509.X509Certificate(rootDer) };
  // The root's CRL is signed now, while its key is at hand: the root key may go offline later.
  const rootCrl = buildRootCrl({ root: { cert: root.cert, privateKey: await toPrivateCryptoKey(rootKeys.privateKey) }, crlNumber: BigInt(Math.floor(nowMs / 1000)), nowMs });
  const files: PlannedFile[] = [
    ...(newFile ? [newFile] : []),
    { path: paths.rootKey, data: encryptPrivateKeyPem(rootKeys.privateKey, passphrase), mode: SECRET_MODE },
    { path: paths.issuingKey, data: encryptPrivateKeyPem(issuingKeys.privateKey, passphrase), mode: SECRET_MODE },
    { path: paths.rootCert, data: rootCertPem, mode: PUBLIC_MODE },
    { path: paths.issuingCert, data: issuingCertPem, mode: PUBLIC_MODE },
    { path: paths.caBundle, data: caBundlePem, mode: PUBLIC_MODE },
    { path: paths.rootCrl, data: rootCrl.pem, mode: PUBLIC_MODE },
  ];
  return {
    root,
    issuer: {
      cert: new x509.X509Certificate(issuingDer),
      privateKey: await toPrivateCryptoKey(issuingKeys.privateKey),
      chainPem: issuingCertPem,
    },
    caBundlePem,
    rootCertPem,
    issuingCertPem,
    passphrase,
    rootKey: rootKeys.privateKey,
    files,
  };
}

/** Creates the root and issuing CA under `dir`. Throws `conflict` if a CA exists and !force. */
export async function initCa(opts: InitCaOptions & { publicBaseUrl?: string | undefined }): Promise<InitCaResult> {
  const paths = pkiPaths(opts.dir);
  subjectName(opts.rootSubject, "Postern Root CA"); // a bad subject is a bad request, whatever exists
  subjectName(opts.issuingSubject, "Postern Issuing CA 1");
  if (!opts.force && ((await exists(paths.rootCert)) || (await exists(paths.rootKey)))) {
    throw new PosternError("conflict", `a CA already exists in ${opts.dir}; use force to replace it`);
  }
  await mkdir(opts.dir, { recursive: true });
  const created = await createCa(opts);
  const createdFiles = await writePlannedFiles(created.files);
  const { files: _files, rootKey: _rootKey, ...material } = created;
  return { ...material, createdFiles };
}

/** True when `dir` holds a root CA certificate. */
export async function caExists(dir: string): Promise<boolean> {
  return exists(pkiPaths(dir).rootCert);
}

/**
 * Loads the CA from `dir`, decrypting only the issuing key (the root key may be offline).
 * Throws `not-found` for missing files and `internal` for a wrong passphrase or a CA pair that
 * does not chain.
 */
export async function loadCa(dir: string, passphrase: string): Promise<CaMaterial> {
  const paths = pkiPaths(dir);
  const [rootCertPem, issuingCertPem, issuingKeyPem] = await Promise.all([
    readText(paths.rootCert),
    readText(paths.issuingCert),
    readText(paths.issuingKey),
  ]);
  const key = decryptPrivateKeyPem(issuingKeyPem, passphrase, paths.issuingKey);
  const root = new x509.X509Certificate(rootCertPem);
  const issuingCert = new x509.X509Certificate(issuingCertPem);
  await checkCaPair(root, issuingCert, key);
  return {
    root: { cert: root },
    issuer: { cert: issuingCert, privateKey: await toPrivateCryptoKey(key), chainPem: issuingCertPem },
    caBundlePem: issuingCertPem + rootCertPem,
    rootCertPem,
    issuingCertPem,
  };
}

async function checkCaPair(root: x509.X509Certificate, issuing: x509.X509Certificate, key: KeyObject): Promise<void> {
  const signedByRoot = await issuing.verify({ publicKey: root.publicKey, signatureOnly: true });
  const issuingSpki = tbsChildren(new Uint8Array(issuing.rawData)).spki.bytes;
  const keyMatches = Buffer.from(spkiOf(key)).equals(Buffer.from(issuingSpki));
  if (!signedByRoot || !keyMatches) {
    throw new PosternError("internal", `${PKI_FILES.issuingCert} does not chain to ${PKI_FILES.rootCert} or its key`);
  }
}

function subjectName(text: string | undefined, defaultCn: string): Uint8Array {
  if (text === undefined) return encodeName({ organization: "Postern", commonName: defaultCn });
  let name: x509.Name | undefined;
  try {
    name = new x509.Name(text);
  } catch (cause) {
    throw new PosternError("bad-request", `cannot parse subject "${text.slice(0, 40)}"`, { cause });
  }
  if (name.getField("CN").length === 0) {
    throw new PosternError("bad-request", `subject "${text.slice(0, 40)}" needs a CN, e.g. "CN=Acme Root CA, O=Acme"`);
  }
  return new Uint8Array(name.toArrayBuffer());
}

interface CaCertificateParams {
  issuerName: Uint8Array;
  subjectName: Uint8Array;
  spki: Uint8Array;
  keyId: Uint8Array;
  authorityKeyId: Uint8Array;
  pathLength: number;
  notBeforeMs: number;
  notAfterMs: number;
  signer: KeyObject;
  /** CRL distribution point of the issuer's CRL that lists this certificate. */
  crlUrl?: string;
}

function caCertificate(p: CaCertificateParams): Bytes {
  return signCertificate(
    {
      serial: randomSerial(),
      issuerName: p.issuerName,
      subjectName: p.subjectName,
      notBeforeMs: p.notBeforeMs,
      notAfterMs: p.notAfterMs,
      spki: p.spki,
      extensions: [
        basicConstraints(true, p.pathLength),
        keyUsage([KEY_USAGE.digitalSignature, KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign]),
        subjectKeyIdentifier(p.keyId),
        authorityKeyIdentifier(p.authorityKeyId),
        ...(p.crlUrl !== undefined ? [crlDistributionPoint(p.crlUrl)] : []),
      ],
    },
    p.signer,
    signatureSchemeFor(p.signer),
  );
}
