/**
 * The on-disk layout of the PKI directory, atomic writes with explicit modes, and the CA
 * passphrase lookup (option, then environment, then file).
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, open, readFile, rename, stat, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { PosternError } from "../../errors.js";
import { PASSPHRASE_ENV, processEnvironment } from "../../config/index.js";

export const PKI_FILES = {
  rootCert: "root-ca.crt",
  rootKey: "root-ca.key",
  issuingCert: "issuing-ca.crt",
  issuingKey: "issuing-ca.key",
  caBundle: "ca-bundle.pem",
  serverCert: "server.crt",
  serverKey: "server.key",
  /** The single forward-signing key of PKIs made before the key ring: imported as the ring's first key. */
  legacySigningKey: "gateway-signing.key",
  demoClientCert: "demo-client.crt",
  demoClientKey: "demo-client.key",
  adminCert: "admin.crt",
  adminKey: "admin.key",
  passphrase: "ca-passphrase",
  rootCrl: "root-ca.crl",
} as const;

export type PkiFileName = keyof typeof PKI_FILES;

/**
 * Exactly the files a gateway pod mounts (deploy/README.md's Secret and the Deployment's list
 * are tested against this): what `postern start` reads from a PKI directory it may not write
 * (`pki.readOnly`). The CA certificates and the issuing key (the online CA signs certificates,
 * CRLs and OCSP answers), the trust bundle, the server certificate and key, and the root's CRL
 * (signed where the root key is; a pod cannot sign another). Never in a pod: `root-ca.key`
 * (offline), `ca-passphrase` (a Secret of its own), and the demo and admin client keys and
 * certificates (clients' credentials; the gateway needs none of them).
 */
export const POD_PKI_FILES = [
  PKI_FILES.rootCert,
  PKI_FILES.issuingCert,
  PKI_FILES.issuingKey,
  PKI_FILES.caBundle,
  PKI_FILES.serverCert,
  PKI_FILES.serverKey,
  PKI_FILES.rootCrl,
] as const;

/** Absolute-or-relative paths of every PKI file under `dir`. */
export function pkiPaths(dir: string): Record<PkiFileName, string> {
  const out = {} as Record<PkiFileName, string>;
  for (const [k, name] of Object.entries(PKI_FILES)) out[k as PkiFileName] = join(dir, name);
  return out;
}

/** Mode for private keys and the passphrase file. */
export const SECRET_MODE = 0o600;
/** Mode for certificates. */
export const PUBLIC_MODE = 0o644;

/**
 * Writes via a temporary file, fsync and rename, so a crash never leaves half a key behind.
 * The mode is set on the temporary file before any byte is written.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  const handle = await open(tmp, "wx", mode);
  try {
    await handle.chmod(mode);
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, path);
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
  await chmod(path, mode);
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

export async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new PosternError("not-found", `missing PKI file ${path}`, { cause: error });
    }
    throw error;
  }
}

/** A file a plan will write (nothing is written until the plan is committed). */
export interface PlannedFile {
  path: string;
  data: string;
  mode: number;
}

/** Writes planned files in order, each atomically; returns their paths. */
export async function writePlannedFiles(files: readonly PlannedFile[]): Promise<string[]> {
  for (const f of files) {
    await mkdir(dirname(f.path), { recursive: true, mode: 0o700 });
    await writeFileAtomic(f.path, f.data, f.mode);
  }
  return files.map((f) => f.path);
}

export interface PassphraseSource {
  dir: string;
  passphrase?: string | undefined;
  passphraseFile?: string | undefined;
  /** Defaults to the process environment; only POSTERN_CA_PASSPHRASE is read. */
  env?: Readonly<Record<string, string | undefined>> | undefined;
}

/**
 * Resolves the CA passphrase: explicit value, then `passphraseFile`, then the environment,
 * then `<dir>/ca-passphrase`. When nothing is found and `create` is set, writes 32 random bytes
 * (base64url) to the passphrase file with mode 0600 and returns it, listing it in `created`.
 */
export async function resolvePassphrase(
  src: PassphraseSource,
  create: boolean,
): Promise<{ passphrase: string; createdFile?: string }> {
  if (src.passphrase !== undefined) return { passphrase: checkPassphrase(src.passphrase, "passphrase option") };
  const env = src.env ?? processEnvironment();
  if (src.passphraseFile === undefined) {
    const fromEnv = env[PASSPHRASE_ENV];
    if (fromEnv !== undefined && fromEnv !== "") return { passphrase: checkPassphrase(fromEnv, PASSPHRASE_ENV) };
  }
  const file = src.passphraseFile ?? join(src.dir, PKI_FILES.passphrase);
  if (await exists(file)) {
    return { passphrase: checkPassphrase((await readFile(file, "utf8")).trim(), file) };
  }
  if (!create) {
    throw new PosternError("not-found", `no CA passphrase: set ${PASSPHRASE_ENV} or create ${file}`);
  }
  const passphrase = randomBytes(32).toString("base64url");
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, passphrase + "\n", SECRET_MODE);
  return { passphrase, createdFile: file };
}

/**
 * Like `resolvePassphrase(src, true)` but writes nothing: a passphrase that had to be made up
 * comes back with the file it belongs in, for the caller to write with everything else.
 */
export async function findOrMakePassphrase(src: PassphraseSource): Promise<{ passphrase: string; newFile?: PlannedFile }> {
  try {
    return await resolvePassphrase(src, false);
  } catch (error) {
    if (!(error instanceof PosternError) || error.code !== "not-found") throw error;
  }
  const passphrase = randomBytes(32).toString("base64url");
  const path = src.passphraseFile ?? join(src.dir, PKI_FILES.passphrase);
  return { passphrase, newFile: { path, data: passphrase + "\n", mode: SECRET_MODE } };
}

function checkPassphrase(value: string, where: string): string {
  if (value.length < 8) throw new PosternError("bad-request", `CA passphrase from ${where} is shorter than 8 characters`);
  return value;
}
