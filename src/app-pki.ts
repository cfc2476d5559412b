import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Redis } from "ioredis";
import type { PosternConfig } from "./config/schema.js";
import type { Logger } from "./log.js";
import type { MetricsRecorder } from "./metrics/recorder.js";
import { AuditLog } from "./pki/audit.js";
import { CertificateAuthority } from "./pki/authority.js";
import { ensurePki, type PkiMaterial } from "./pki/bootstrap.js";
import { exists, resolvePassphrase } from "./pki/ca-files.js";
import { buildRootCrl } from "./pki/crl.js";
import { CrlPublisher } from "./pki/crl-publisher.js";
import { FileStore } from "./pki/file-store.js";
import { decryptPrivateKeyPem, toPrivateCryptoKey } from "./pki/keys.js";
import { defineProfile, type CertificateProfile } from "./pki/profile.js";
import { RedisStore } from "./pki/redis-store.js";
import { SigningKeyRing } from "./pki/signing-keys.js";
import type { PkiStore, RevokedEntry } from "./pki/store.js";
import type { RedisClient } from "./replay/redis-client.js";
import { RevocationIndex } from "./tls/revocation-index.js";

export interface PkiRuntime {
  material: PkiMaterial;
  created: boolean;
  authority: CertificateAuthority;
  crl: CrlPublisher;
  store: PkiStore;
  /** The gateway's forward-signing keys: the active one signs, the JWKS publishes all in overlap. */
  signingKeys: SigningKeyRing;
  revocations: RevocationIndex;
  /** Called for every revocation (this instance's or, with Redis, any replica's). */
  onRevoked(listener: (entry: RevokedEntry) => void): void;
  stop(): Promise<void>;
}

/**
 * Builds the PKI side of the gateway: material (bootstrapped on first start), the store
 * (file or Redis), the audit log, the CRL publisher, the handshake revocation index and the
 * certificate authority.
 */
export async function startPki(
  config: Readonly<PosternConfig>,
  deps: { log: Logger; metrics: MetricsRecorder; now: () => number; redis: RedisClient | undefined; publicBaseUrl: string },
): Promise<PkiRuntime> {
  const { log, metrics, now } = deps;
  const urls = { crlUrl: `${deps.publicBaseUrl}/crl`, ocspUrl: `${deps.publicBaseUrl}/ocsp` };
  const passphraseSource = { dir: config.pki.dir, ...(config.pki.passphraseFile ? { passphraseFile: config.pki.passphraseFile } : {}) };
  const { material, created } = await ensurePki({ ...passphraseSource, hostnames: [...config.pki.hostnames], now, ...urls });

  const { passphrase } = await resolvePassphrase(passphraseSource, false);
  const signingKeys = await SigningKeyRing.open({ pkiDir: config.pki.dir, passphrase, now });
  const store: PkiStore = deps.redis
    ? new RedisStore({ redis: deps.redis as Redis, keyPrefix: `${config.redis.keyPrefix}{pki}:` })
    : await FileStore.open(config.pki.storeDir ?? join(config.pki.dir, "store"), { now });
  const auditPath = config.pki.auditLogPath ?? join(config.data.dir, "audit.jsonl");
  await mkdir(dirname(auditPath), { recursive: true, mode: 0o700 });
  const audit = await AuditLog.open(auditPath, { now });

  const revocations = new RevocationIndex();
  const listeners: Array<(entry: RevokedEntry) => void> = [];
  const unsubscribe = await store.subscribeRevocations((entry) => {
    revocations.add(entry.serial);
    for (const listener of listeners) listener(entry);
  });

  const crl = new CrlPublisher({
    issuer: material.issuer,
    store,
    rootCrlPem: await rootCrl(material, passphrase, now, log),
    validityMs: config.pki.crlValiditySeconds * 1000,
    now,
    onPublished: (published) => metrics.expiresAt("crl", published.nextUpdateMs),
    onError: (error) => log.error("CRL rebuild failed; the previous CRL stays published", { error: String(error) }),
  });
  await crl.start();

  const profiles = new Map<string, CertificateProfile>(
    Object.entries(config.pki.profiles).map(([name, input]) => [name, defineProfile({ name, ...stripUndefined(input) })]),
  );
  const authority = new CertificateAuthority({
    material,
    store,
    audit,
    crl,
    profiles,
    defaultProfile: config.pki.defaultProfile,
    urls,
    renewalGraceSeconds: config.pki.renewalGraceSeconds,
    metrics,
    now,
  });
  // The bootstrap's own client certificates join the inventory, so OCSP knows them and they can be revoked.
  for (const [file, profile] of [["demo-client.crt", "client"], ["admin.crt", "admin"]] as const) {
    const path = join(config.pki.dir, file);
    if (await exists(path)) await authority.adopt(await readFile(path, "utf8"), profile);
  }

  const refresh = async () => {
    // Picks up a key rotation made by `postern keys rotate` or another replica.
    if (await signingKeys.reload()) log.info("forward-signing key rotated", { kid: signingKeys.active().keyid });
    // Loads the handshake index at start; later catches up revocations a Redis subscriber may
    // have missed while disconnected.
    for (const entry of await store.listRevoked()) revocations.add(entry.serial);
    metrics.expiresAt("ca", material.issuer.cert.notAfter.getTime());
    if (crl.nextUpdateMs !== undefined) metrics.expiresAt("crl", crl.nextUpdateMs);
    metrics.expiresAt("earliest_certificate", await earliestExpiry(store));
  };
  await refresh();
  const timer = setInterval(() => void refresh().catch(() => undefined), 60_000);
  timer.unref();

  return {
    material,
    created,
    authority,
    crl,
    store,
    signingKeys,
    revocations,
    onRevoked: (listener) => listeners.push(listener),
    async stop() {
      clearInterval(timer);
      await crl.stop();
      await unsubscribe();
      await audit.close();
      await store.close();
    },
  };
}

/**
 * The root CA's CRL (Node and `openssl verify -crl_check_all` want one per CA). Rebuilt at
 * start while the root key is on this machine; with the root key offline, the stored
 * `root-ca.crl` is used as it is.
 */
async function rootCrl(material: PkiMaterial, passphrase: string, now: () => number, log: Logger): Promise<string> {
  const path = join(material.dir, "root-ca.crl");
  if (await exists(material.files.rootKey)) {
    const key = decryptPrivateKeyPem(await readFile(material.files.rootKey, "utf8"), passphrase, "root-ca.key");
    const built = buildRootCrl({
      root: { cert: material.root.cert, privateKey: await toPrivateCryptoKey(key) },
      crlNumber: BigInt(Math.floor(now() / 1000)),
      nowMs: now(),
    });
    await writeFile(path, built.pem, { mode: 0o644 });
    return built.pem;
  }
  if (await exists(path)) return readFile(path, "utf8");
  log.warn("no root CA key and no root-ca.crl: relying parties that check the root's CRL will fail");
  return "";
}

async function earliestExpiry(store: PkiStore): Promise<number> {
  let earliest = Number.POSITIVE_INFINITY;
  let cursor: string | undefined;
  do {
    const page = await store.listCertificates({ status: "valid", limit: 1000, ...(cursor ? { cursor } : {}) });
    for (const item of page.items) earliest = Math.min(earliest, item.notAfterMs);
    cursor = page.nextCursor;
  } while (cursor);
  return Number.isFinite(earliest) ? earliest : Date.now() + 365 * 86_400_000;
}

function stripUndefined<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as { [K in keyof T]: Exclude<T[K], undefined> };
}
