/**
 * The PKI directory at start: the CA, the gateway's server certificate and signing key, two
 * ready-made client certificates (demo, admin) and the root's CRL. `planPki` decides what is
 * missing or stale and makes it in memory; nothing touches the disk until the caller, holding
 * the PKI lock and having recorded every new certificate in the inventory and the audit log,
 * writes the planned files (`writePlannedFiles`). A start that fails before then leaves the
 * directory byte for byte as it was.
 *
 * A built-in certificate is re-issued only with a new key (a key whose certificate may have
 * been revoked is never certified again), and only when its key or certificate is missing, the
 * pair does not match, it was issued by another CA, it expires within 7 days, or (server) a
 * configured host name is missing. The public base URL is no reason: it is recorded in the
 * certificates (their CRL and OCSP URLs), and a start asking for another one is refused.
 *
 * With `readOnly` (a pod's Secret) the plan never writes: the directory must hold exactly what
 * a pod mounts (POD_PKI_FILES), the demo and admin certificates are not looked at, and what a
 * writable start would re-issue is kept with a warning or refused by name (read-only.ts).
 *
 * One file (over ~300 lines) because planning, loading and the re-issue rules of the built-in
 * certificates must be read together: splitting them hid which file a start may write.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import { hostname } from "node:os";
import { isIP } from "node:net";
import { PosternError } from "../../errors.js";
import { caExists, createCa, loadCa, type CaMaterial } from "./ca.js";
import {
  PUBLIC_MODE,
  SECRET_MODE,
  exists,
  pkiPaths,
  readText,
  resolvePassphrase,
  writePlannedFiles,
  type PkiFileName,
  type PlannedFile,
} from "./ca-files.js";
import { issueLeafDer, type IssuingCa, type KeyAlgorithm } from "../issue/index.js";
import {
  decryptPrivateKeyPem,
  encryptPrivateKeyPem,
  generateKeyPairNow,
  plainPrivateKeyPem,
  spkiOf,
} from "../keys/index.js";
import { planRootCrl } from "./root-crl.js";
import { assertPodFiles, keepReadOnlyLeaf } from "./read-only.js";
import type { x509 } from "../der/index.js";

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
  issuer: IssuingCa;
  root: { cert: x509.X509Certificate };
  /** The root CA's CRL (`root-ca.crl`), when there is one. */
  rootCrlPem: string | undefined;
  /** The base URL of the public listener the certificates name (CRL, OCSP), if any. */
  publicBaseUrl: string | undefined;
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
  /**
   * The public base URL asked for explicitly (`pki.publicBaseUrl`). It must equal the one the
   * existing certificates name, else the plan is refused with `conflict`.
   */
  publicBaseUrl?: string;
  /** The URL to use when none is asked for and the certificates name none (a new PKI). */
  defaultPublicBaseUrl?: string;
  /**
   * An operator's explicit re-issue (`postern pki reissue`): these built-in certificates get
   * new keys and certificates whatever their state, and with `moveToPublicBaseUrl` they name
   * that URL instead of the recorded one.
   */
  reissue?: readonly ("server" | "demo" | "admin")[];
  /**
   * With `reissue`: certify the key already on disk again instead of making a new one (`postern
   * cert renew-server --keep-key`); only the certificate file is written. Default: a new key.
   */
  reissueKeepingKey?: boolean;
  moveToPublicBaseUrl?: string;
  /** Defaults to the process environment; only POSTERN_CA_PASSPHRASE is read. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Plan without a single write (see the file header); `writes` is then always empty. */
  readOnly?: boolean;
}

/** The certificates the PKI directory holds for itself. */
export type BuiltinKind = "root-ca" | "issuing-ca" | "server" | "demo" | "admin";

/** Why a plan issues a built-in certificate. */
export type IssueReason = "bootstrap" | "missing" | "key-mismatch" | "other-ca" | "expiring" | "hostnames" | "requested";

export interface BuiltinCertificate {
  kind: BuiltinKind;
  /** The certificate alone (PEM). */
  pem: string;
  /** Set when this plan issues it now (with a new key); absent for one already on disk. */
  issuedBecause?: IssueReason;
}

/** What a start will make of the PKI directory; nothing is written yet. */
export interface PkiPlan {
  /** A new CA (the directory held none). */
  created: boolean;
  material: PkiMaterial;
  /** Every built-in certificate as it will be, new ones marked. */
  certificates: BuiltinCertificate[];
  /** Files to write, in order (a new CA's first); empty when the directory is fine as it is. */
  writes: PlannedFile[];
  /** A warning for the operator (e.g. no root CRL can be published). */
  warnings: string[];
}

const DAY_MS = 86_400_000;
const RENEW_BEFORE_MS = 7 * DAY_MS;
const SERVER_LIFETIME_S = 365 * 86_400;
const CLIENT_LIFETIME_S = 90 * 86_400;

export const DEMO_CLIENT_IDENTITY = "spiffe://postern.local/client/demo";
export const ADMIN_IDENTITY = "spiffe://postern.local/admin/operator";

/** Plans the PKI (see the file header): creates a CA in memory when `dir` holds none. */
export async function planPki(opts: EnsurePkiOptions): Promise<PkiPlan> {
  const now = opts.now ?? Date.now;
  if (opts.readOnly) {
    if (opts.reissue?.length || opts.moveToPublicBaseUrl !== undefined) {
      throw new PosternError("conflict", `pki.readOnly is set: re-issue where ${opts.dir} is writable (POSTERN_PKI_READ_ONLY=0), not from a read-only copy`);
    }
    await assertPodFiles(opts.dir);
  }
  const created = !(await caExists(opts.dir));
  const writes: PlannedFile[] = [];
  let ca: CaMaterial;
  let passphrase: string;
  let rootKey: KeyObject | undefined;
  const recorded = created ? undefined : await recordedBaseUrl(pkiPaths(opts.dir).serverCert);
  if (opts.moveToPublicBaseUrl === undefined && opts.publicBaseUrl !== undefined && recorded !== undefined && opts.publicBaseUrl !== recorded) {
    throw new PosternError(
      "conflict",
      `the PKI in ${opts.dir} names the public base URL ${recorded} in its certificates (CRL and OCSP), but this start asks for ${opts.publicBaseUrl}. ` +
        `Give every replica the same pki.publicBaseUrl (POSTERN_PUBLIC_BASE_URL), or move the PKI to the new URL with "postern pki reissue --public-base-url ${opts.publicBaseUrl}" while Postern is stopped`,
    );
  }
  const baseUrl = opts.moveToPublicBaseUrl ?? opts.publicBaseUrl ?? recorded ?? opts.defaultPublicBaseUrl;
  if (created) {
    const fresh = await createCa({ ...caOptions(opts), publicBaseUrl: baseUrl });
    writes.push(...fresh.files);
    ({ passphrase, rootKey } = fresh);
    ca = fresh;
  } else {
    ({ passphrase } = await resolvePassphrase(opts, false));
    ca = await loadCa(opts.dir, passphrase);
    const rootKeyPath = pkiPaths(opts.dir).rootKey;
    // Read-only: a root key that happens to be there must not lead to a root CRL to write.
    if (!opts.readOnly && (await exists(rootKeyPath))) rootKey = decryptPrivateKeyPem(await readText(rootKeyPath), passphrase, rootKeyPath);
  }
  const plan = await completePlan(opts, { ca, passphrase, rootKey, created, writes, baseUrl, nowMs: now() });
  if (opts.readOnly && plan.writes.length > 0) {
    // Unreachable by the rules above; a guard, so that a new reason to write fails here by name.
    throw new PosternError("internal", `pki.readOnly: the plan would write ${plan.writes.map((w) => w.path).join(", ")}`);
  }
  return plan;
}

/** Creates the PKI when `dir` holds no CA, else loads it, and writes what the plan says. */
export async function ensurePki(opts: EnsurePkiOptions): Promise<{ created: boolean; material: PkiMaterial; createdFiles: string[] }> {
  const plan = await planPki(opts);
  const createdFiles = await writePlannedFiles(plan.writes);
  return { created: plan.created, material: plan.material, createdFiles };
}

/** Loads an existing PKI (re-issuing stale leaves); `not-found` when `dir` holds no CA. */
export async function loadPki(opts: EnsurePkiOptions): Promise<PkiMaterial> {
  if (!(await caExists(opts.dir))) {
    throw new PosternError("not-found", `no CA in ${opts.dir}; run postern init first`);
  }
  return (await ensurePki(opts)).material;
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

/** The base URL the server certificate's OCSP URL names (`<base>/ocsp`), if it names one. */
async function recordedBaseUrl(serverCertPath: string): Promise<string | undefined> {
  if (!(await exists(serverCertPath))) return undefined;
  try {
    const info = new X509Certificate(await readText(serverCertPath)).infoAccess ?? "";
    const ocsp = info.split("\n").map((l) => /^OCSP - URI:(.*)\/ocsp$/.exec(l.trim())?.[1]).find((u) => u !== undefined);
    return ocsp;
  } catch {
    return undefined; // unreadable: the plan re-issues it anyway
  }
}

interface PlanContext {
  ca: CaMaterial;
  passphrase: string;
  rootKey: KeyObject | undefined;
  created: boolean;
  writes: PlannedFile[];
  baseUrl: string | undefined;
  nowMs: number;
}

async function completePlan(opts: EnsurePkiOptions, c: PlanContext): Promise<PkiPlan> {
  const files = pkiPaths(opts.dir);
  const now = () => c.nowMs;
  const issuerNode = new X509Certificate(c.ca.issuingCertPem);
  const urls = c.baseUrl === undefined ? {} : { crlUrl: `${c.baseUrl}/crl`, ocspUrl: `${c.baseUrl}/ocsp` };
  const { dnsNames, ipAddresses } = serverNames(opts.hostnames);
  const required = serverNames(opts.hostnames, false);
  const staleness = (cert: X509Certificate): IssueReason | undefined => {
    if (!cert.checkIssued(issuerNode) || !cert.verify(issuerNode.publicKey)) return "other-ca";
    if (Date.parse(cert.validTo) - c.nowMs < RENEW_BEFORE_MS) return "expiring";
    return undefined;
  };
  const certificates: BuiltinCertificate[] = [];
  const warnings: string[] = [];
  const requested = new Set<BuiltinKind>(opts.reissue ?? []);
  const leaf = (kind: BuiltinKind, spec: Omit<LeafSpec, "fresh" | "writes" | "kind" | "requested" | "keepKey" | "readOnly">) =>
    planLeaf({ ...spec, kind, fresh: c.created, writes: c.writes, requested: requested.has(kind), keepKey: opts.reissueKeepingKey === true, readOnly: opts.readOnly ? { nowMs: c.nowMs, warnings } : undefined }).then((r) => {
      certificates.push(r.certificate);
      return r;
    });

  const server = await leaf("server", {
    certPath: files.serverCert, keyPath: files.serverKey, passphrase: c.passphrase,
    // The machine's host name goes into a new certificate, but its absence alone is no reason to
    // re-issue: replicas with other host names would each rewrite a shared certificate.
    needsReissue: (cert) => staleness(cert)
      ?? (required.dnsNames.some((d) => cert.checkHost(d, { subject: "never" }) === undefined)
        || required.ipAddresses.some((ip) => cert.checkIP(ip) === undefined) ? "hostnames" : undefined),
    issue: (key) => issueLeafDer({
      issuer: c.ca.issuer, spki: spkiOf(key), identity: dnsNames[0] ?? "postern", dnsNames, ipAddresses,
      usage: "gateway", lifetimeSeconds: SERVER_LIFETIME_S, now, ...urls,
    }).chainPem,
  });
  // A pod holds no client credentials: the demo and admin certificates live where the keys are.
  const clients = opts.readOnly ? [] : ([
    ["demo", files.demoClientCert, files.demoClientKey, DEMO_CLIENT_IDENTITY, "client"],
    ["admin", files.adminCert, files.adminKey, ADMIN_IDENTITY, "admin"],
  ] as const);
  for (const [kind, certPath, keyPath, identity, role] of clients) {
    await leaf(kind, {
      certPath, keyPath, passphrase: undefined, needsReissue: staleness,
      issue: (key) => issueLeafDer({
        issuer: c.ca.issuer, spki: spkiOf(key), identity, roles: [role], usage: "client",
        lifetimeSeconds: CLIENT_LIFETIME_S, now, ...urls,
      }).chainPem,
    });
  }
  if (!c.created && (!(await exists(files.caBundle)) || (await readText(files.caBundle)) !== c.ca.caBundlePem)) {
    if (opts.readOnly) {
      throw new PosternError("conflict", `pki.readOnly: ${files.caBundle} is not ${PKI_FILES_BUNDLE_TEXT}: copy the bootstrap's ca-bundle.pem into the Secret`);
    }
    c.writes.push({ path: files.caBundle, data: c.ca.caBundlePem, mode: PUBLIC_MODE });
  }
  let rootCrlPem: string | undefined;
  if (c.created) {
    rootCrlPem = c.writes.find((w) => w.path === files.rootCrl)?.data;
  } else {
    const rootCrl = await planRootCrl({ dir: opts.dir, root: c.ca.root.cert, rootKey: c.rootKey, nowMs: c.nowMs });
    rootCrlPem = rootCrl.pem;
    if (rootCrl.write) c.writes.push(rootCrl.write);
    if (rootCrl.problem) warnings.push(rootCrl.problem);
  }
  certificates.unshift(
    { kind: "root-ca", pem: c.ca.rootCertPem, ...(c.created ? { issuedBecause: "bootstrap" as const } : {}) },
    { kind: "issuing-ca", pem: c.ca.issuingCertPem, ...(c.created ? { issuedBecause: "bootstrap" as const } : {}) },
  );
  return {
    created: c.created,
    certificates,
    writes: c.writes,
    warnings,
    material: {
      dir: opts.dir,
      rootCertPem: c.ca.rootCertPem,
      issuingCertPem: c.ca.issuingCertPem,
      caBundlePem: c.ca.caBundlePem,
      serverCertChainPem: server.chainPem,
      serverKeyPem: plainPrivateKeyPem(server.key),
      issuer: c.ca.issuer,
      root: c.ca.root,
      rootCrlPem,
      publicBaseUrl: c.baseUrl,
      files,
    },
  };
}

/** Requested names plus the defaults, split into DNS names and IP addresses, deduplicated. */
export function serverNames(hostnames: readonly string[], withHostName = true): { dnsNames: string[]; ipAddresses: string[] } {
  const all = [...hostnames, "localhost", "127.0.0.1", "::1", ...(withHostName ? [hostname()] : [])].map((h) => h.trim()).filter((h) => h !== "");
  const ipAddresses = [...new Set(all.filter((h) => isIP(h) !== 0))];
  const dnsNames = [...new Set(all.filter((h) => isIP(h) === 0).map((h) => h.toLowerCase()))];
  return { dnsNames, ipAddresses };
}

const PKI_FILES_BUNDLE_TEXT = "issuing-ca.crt followed by root-ca.crt";

interface LeafSpec {
  kind: BuiltinKind;
  certPath: string;
  keyPath: string;
  /** Encrypt the key at rest with this passphrase; undefined writes it in clear (0600). */
  passphrase: string | undefined;
  writes: PlannedFile[];
  fresh: boolean;
  /** Re-issue whatever its state (an operator asked). */
  requested: boolean;
  /** A requested re-issue certifies the key on disk again (it must be readable and match). */
  keepKey: boolean;
  needsReissue: (cert: X509Certificate) => IssueReason | undefined;
  /** Never issue: keep what is there with a warning, or refuse by name (read-only.ts). */
  readOnly: { nowMs: number; warnings: string[] } | undefined;
  /** Returns the chain PEM (leaf + issuing) for the key. */
  issue: (key: KeyObject) => string;
}

async function planLeaf(spec: LeafSpec): Promise<{ key: KeyObject; chainPem: string; certificate: BuiltinCertificate }> {
  let reason: IssueReason | undefined = spec.fresh ? "bootstrap" : spec.requested ? "requested" : undefined;
  if (!reason) {
    const [keyPem, chainPem] = await Promise.all([
      exists(spec.keyPath).then((e) => (e ? readText(spec.keyPath) : undefined)),
      exists(spec.certPath).then((e) => (e ? readText(spec.certPath) : undefined)),
    ]);
    if (keyPem === undefined || chainPem === undefined) {
      reason = "missing";
    } else {
      const key = spec.passphrase === undefined ? createPrivateKey(keyPem) : decryptPrivateKeyPem(keyPem, spec.passphrase, spec.keyPath);
      const cert = new X509Certificate(chainPem);
      reason = cert.checkPrivateKey(key) ? spec.needsReissue(cert) : "key-mismatch";
      const kept = { key, chainPem, certificate: { kind: spec.kind, pem: cert.toString() } };
      if (!reason) return kept;
      if (spec.readOnly) {
        spec.readOnly.warnings.push(keepReadOnlyLeaf({ path: spec.certPath, reason, notAfterMs: Date.parse(cert.validTo), nowMs: spec.readOnly.nowMs }));
        return kept;
      }
    }
  }
  // Nothing on disk to keep (or a re-issue asked for): this throws, naming the file.
  if (spec.readOnly) keepReadOnlyLeaf({ path: spec.certPath, reason, notAfterMs: undefined, nowMs: spec.readOnly.nowMs });
  if (reason === "requested" && spec.keepKey) return reissueWithKeptKey(spec);
  // Always a new key: the old one's certificate may have been revoked.
  const key = generateKeyPairNow("P-256").privateKey;
  const chainPem = spec.issue(key);
  spec.writes.push(
    { path: spec.keyPath, data: spec.passphrase === undefined ? plainPrivateKeyPem(key) : encryptPrivateKeyPem(key, spec.passphrase), mode: SECRET_MODE },
    { path: spec.certPath, data: chainPem, mode: PUBLIC_MODE },
  );
  return { key, chainPem, certificate: { kind: spec.kind, pem: new X509Certificate(chainPem).toString(), issuedBecause: reason } };
}


/** A requested re-issue for the key already on disk: only the certificate is written. */
async function reissueWithKeptKey(spec: LeafSpec): Promise<{ key: KeyObject; chainPem: string; certificate: BuiltinCertificate }> {
  if (!(await exists(spec.keyPath))) throw new PosternError("not-found", `${spec.keyPath} is missing: there is no key to keep (renew with a new key)`);
  const keyPem = await readText(spec.keyPath);
  const key = spec.passphrase === undefined ? createPrivateKey(keyPem) : decryptPrivateKeyPem(keyPem, spec.passphrase, spec.keyPath);
  const chainPem = spec.issue(key);
  spec.writes.push({ path: spec.certPath, data: chainPem, mode: PUBLIC_MODE });
  return { key, chainPem, certificate: { kind: spec.kind, pem: new X509Certificate(chainPem).toString(), issuedBecause: "requested" } };
}
