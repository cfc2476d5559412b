/**
 * First-start PKI: creates (or loads) the CA, the gateway's server certificate and signing key,
 * and two ready-made client certificates (demo, admin) under one directory. On every load the
 * server and client certificates are re-issued when expired, within 7 days of expiry, issued by
 * another CA, or (server) missing a requested hostname.
 */
import { X509Certificate, createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from "node:crypto";
import { hostname } from "node:os";
import { isIP } from "node:net";
import { PosternError } from "../errors.js";
import { caExists, initCa, loadCa, type CaMaterial } from "./ca.js";
import {
  PUBLIC_MODE,
  SECRET_MODE,
  exists,
  pkiPaths,
  readText,
  resolvePassphrase,
  writeFileAtomic,
  type PkiFileName,
} from "./ca-files.js";
import { issueLeafDer, type IssuingCa, type KeyAlgorithm } from "./issue.js";
import {
  decryptPrivateKeyPem,
  encryptPrivateKeyPem,
  generateKeyPairNow,
  jwkThumbprint,
  plainPrivateKeyPem,
  spkiOf,
} from "./keys.js";
import type { x509 } from "./x509.js";

export interface PkiMaterial {
  dir: string;
  rootCertPem: string;
  issuingCertPem: string;
  /** Issuing + root: what clients and servers trust (TLS `ca`). */
  caBundlePem: string;
  /** Gateway server leaf + issuing CA. */
  serverCertChainPem: string;
  /** Unencrypted PKCS#8 PEM, in memory only, for TLS `key`. */
  serverKeyPem: string;
  /** The gateway's Ed25519 forward-signing key. */
  signingKey: KeyObject;
  /** node:crypto's JsonWebKey (createPublicKey accepts it); kid = RFC 7638 thumbprint (SHA-256, base64url). */
  signingPublicJwk: JsonWebKey & { kid: string };
  issuer: IssuingCa;
  root: { cert: x509.X509Certificate };
  /** Paths of every PKI file under `dir`. */
  files: Record<PkiFileName, string>;
}

export interface EnsurePkiOptions {
  dir: string;
  /** Server SANs; localhost, 127.0.0.1, ::1 and os.hostname() are always added. */
  hostnames: string[];
  /** Else env POSTERN_CA_PASSPHRASE, else `<dir>/ca-passphrase` (generated 0600 on first bootstrap). */
  passphrase?: string;
  /** A file holding the passphrase (a mounted secret); read before the environment. */
  passphraseFile?: string;
  /** CA key type, default P-256. */
  keyAlgorithm?: KeyAlgorithm;
  now?: () => number;
  crlUrl?: string;
  ocspUrl?: string;
  /** Defaults to process.env; only POSTERN_CA_PASSPHRASE is read. */
  env?: Readonly<Record<string, string | undefined>>;
}

const DAY_MS = 86_400_000;
const RENEW_BEFORE_MS = 7 * DAY_MS;
const SERVER_LIFETIME_S = 365 * 86_400;
const CLIENT_LIFETIME_S = 90 * 86_400;

export const DEMO_CLIENT_IDENTITY = "spiffe://postern.local/client/demo";
export const ADMIN_IDENTITY = "spiffe://postern.local/admin/operator";

/** Creates the PKI when `dir` holds no CA, else loads it. Returns what it did. */
export async function ensurePki(
  opts: EnsurePkiOptions,
): Promise<{ created: boolean; material: PkiMaterial; createdFiles: string[] }> {
  const createdFiles: string[] = [];
  let ca: CaMaterial;
  let passphrase: string;
  const created = !(await caExists(opts.dir));
  if (created) {
    const init = await initCa({ ...caOptions(opts), force: false });
    createdFiles.push(...init.createdFiles);
    ({ passphrase } = init);
    ca = init;
  } else {
    ({ passphrase } = await resolvePassphrase(opts, false));
    ca = await loadCa(opts.dir, passphrase);
  }
  const material = await completePki(opts, ca, passphrase, createdFiles, created);
  return { created, material, createdFiles };
}

/** Loads an existing PKI (re-issuing stale leaves); `not-found` when `dir` holds no CA. */
export async function loadPki(opts: EnsurePkiOptions): Promise<PkiMaterial> {
  if (!(await caExists(opts.dir))) {
    throw new PosternError("not-found", `no CA in ${opts.dir}; run postern init first`);
  }
  const { passphrase } = await resolvePassphrase(opts, false);
  return completePki(opts, await loadCa(opts.dir, passphrase), passphrase, [], false);
}

function caOptions(opts: EnsurePkiOptions) {
  return {
    dir: opts.dir,
    ...(opts.keyAlgorithm && { keyAlgorithm: opts.keyAlgorithm }),
    ...(opts.passphrase !== undefined && { passphrase: opts.passphrase }),
    ...(opts.passphraseFile !== undefined && { passphraseFile: opts.passphraseFile }),
    ...(opts.env && { env: opts.env }),
    ...(opts.now && { now: opts.now }),
  };
}

async function completePki(
  opts: EnsurePkiOptions,
  ca: CaMaterial,
  passphrase: string,
  written: string[],
  /** A new CA: leftovers of an older PKI in `dir` are replaced, never loaded. */
  fresh: boolean,
): Promise<PkiMaterial> {
  const files = pkiPaths(opts.dir);
  const now = opts.now ?? Date.now;
  const issuerNode = new X509Certificate(ca.issuingCertPem);
  const urls = { crlUrl: opts.crlUrl, ocspUrl: opts.ocspUrl };
  const { dnsNames, ipAddresses } = serverNames(opts.hostnames);
  const required = serverNames(opts.hostnames, false);
  // A moved public listener changes the OCSP URL (and the CDP with it): re-issue then too.
  const urlMoved = (cert: X509Certificate): boolean =>
    opts.ocspUrl !== undefined && !(cert.infoAccess ?? "").split("\n").includes(`OCSP - URI:${opts.ocspUrl}`);
  const stale = (cert: X509Certificate): boolean =>
    Date.parse(cert.validTo) - now() < RENEW_BEFORE_MS || !cert.checkIssued(issuerNode) || !cert.verify(issuerNode.publicKey)
    || urlMoved(cert);

  const server = await ensureLeaf({
    certPath: files.serverCert, keyPath: files.serverKey, passphrase, written, fresh,
    // The machine's host name goes into a new certificate, but its absence alone is no reason to
    // re-issue: replicas with other host names would each rewrite a shared certificate.
    needsReissue: (c) => stale(c) || required.dnsNames.some((d) => c.checkHost(d, { subject: "never" }) === undefined)
      || required.ipAddresses.some((ip) => c.checkIP(ip) === undefined),
    issue: (key) => issueLeafDer({
      issuer: ca.issuer, spki: spkiOf(key), identity: dnsNames[0] ?? "postern", dnsNames, ipAddresses,
      usage: "gateway", lifetimeSeconds: SERVER_LIFETIME_S, now, ...definedUrls(urls),
    }).chainPem,
  });
  for (const [certPath, keyPath, identity, role] of [
    [files.demoClientCert, files.demoClientKey, DEMO_CLIENT_IDENTITY, "client"],
    [files.adminCert, files.adminKey, ADMIN_IDENTITY, "admin"],
  ] as const) {
    await ensureLeaf({
      certPath, keyPath, passphrase: undefined, written, fresh, needsReissue: stale,
      issue: (key) => issueLeafDer({
        issuer: ca.issuer, spki: spkiOf(key), identity, roles: [role], usage: "client",
        lifetimeSeconds: CLIENT_LIFETIME_S, now, ...definedUrls(urls),
      }).chainPem,
    });
  }
  const signingKey = await ensureSigningKey(files.signingKey, passphrase, written, fresh);
  if (!(await exists(files.caBundle)) || (await readText(files.caBundle)) !== ca.caBundlePem) {
    await writeFileAtomic(files.caBundle, ca.caBundlePem, PUBLIC_MODE);
    if (!written.includes(files.caBundle)) written.push(files.caBundle);
  }
  const jwk = createPublicKey(signingKey).export({ format: "jwk" });
  return {
    dir: opts.dir,
    rootCertPem: ca.rootCertPem,
    issuingCertPem: ca.issuingCertPem,
    caBundlePem: ca.caBundlePem,
    serverCertChainPem: server.chainPem,
    serverKeyPem: plainPrivateKeyPem(server.key),
    signingKey,
    signingPublicJwk: { ...jwk, alg: "EdDSA", use: "sig", kid: jwkThumbprint(jwk) },
    issuer: ca.issuer,
    root: ca.root,
    files,
  };
}

function definedUrls(u: { crlUrl?: string | undefined; ocspUrl?: string | undefined }) {
  return { ...(u.crlUrl !== undefined && { crlUrl: u.crlUrl }), ...(u.ocspUrl !== undefined && { ocspUrl: u.ocspUrl }) };
}

/** Requested names plus the defaults, split into DNS names and IP addresses, deduplicated. */
export function serverNames(hostnames: readonly string[], withHostName = true): { dnsNames: string[]; ipAddresses: string[] } {
  const all = [...hostnames, "localhost", "127.0.0.1", "::1", ...(withHostName ? [hostname()] : [])].map((h) => h.trim()).filter((h) => h !== "");
  const ipAddresses = [...new Set(all.filter((h) => isIP(h) !== 0))];
  const dnsNames = [...new Set(all.filter((h) => isIP(h) === 0).map((h) => h.toLowerCase()))];
  return { dnsNames, ipAddresses };
}

interface LeafSpec {
  certPath: string;
  keyPath: string;
  /** Encrypt the key at rest with this passphrase; undefined writes it in clear (0600). */
  passphrase: string | undefined;
  written: string[];
  fresh: boolean;
  needsReissue: (cert: X509Certificate) => boolean;
  /** Returns the chain PEM (leaf + issuing) for the key. */
  issue: (key: KeyObject) => string;
}

async function ensureLeaf(spec: LeafSpec): Promise<{ key: KeyObject; chainPem: string }> {
  let key: KeyObject | undefined;
  if (!spec.fresh && (await exists(spec.keyPath))) {
    const pem = await readText(spec.keyPath);
    key = spec.passphrase === undefined ? createPrivateKey(pem) : decryptPrivateKeyPem(pem, spec.passphrase, spec.keyPath);
  }
  if (key && (await exists(spec.certPath))) {
    const chainPem = await readText(spec.certPath);
    const cert = new X509Certificate(chainPem);
    if (cert.checkPrivateKey(key) && !spec.needsReissue(cert)) return { key, chainPem };
  }
  if (!key) {
    key = generateKeyPairNow("P-256").privateKey;
    const pem = spec.passphrase === undefined ? plainPrivateKeyPem(key) : encryptPrivateKeyPem(key, spec.passphrase);
    await writeFileAtomic(spec.keyPath, pem, SECRET_MODE);
    spec.written.push(spec.keyPath);
  }
  const chainPem = spec.issue(key);
  await writeFileAtomic(spec.certPath, chainPem, PUBLIC_MODE);
  spec.written.push(spec.certPath);
  return { key, chainPem };
}

async function ensureSigningKey(path: string, passphrase: string, written: string[], fresh: boolean): Promise<KeyObject> {
  if (!fresh && (await exists(path))) return decryptPrivateKeyPem(await readText(path), passphrase, path);
  const key = generateKeyPairNow("Ed25519").privateKey;
  await writeFileAtomic(path, encryptPrivateKeyPem(key, passphrase), SECRET_MODE);
  written.push(path);
  return key;
}
