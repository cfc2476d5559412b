import { X509Certificate, createHash, hkdfSync } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { stateLocations, type PosternConfig } from "../config/index.js";
import { PosternError } from "../errors.js";
import type { Logger } from "../log.js";
import type { MetricsRecorder } from "../metrics/index.js";
import { AuditLog } from "./audit/index.js";
import { CertificateAuthority } from "./authority.js";
import {
  planPki,
  type EnsurePkiOptions,
  type PkiMaterial,
  type PkiPlan,
  readServingMaterial,
  recordPlan,
  seedLedger,
  resolvePassphrase,
  type ServingCheck,
  type ServingMaterial,
  writePlannedFiles,
} from "./ca/index.js";
import { defineProfile, type CertificateProfile } from "./issue/index.js";
import { keyHashOfCertificate } from "./keys/index.js";
import { canonicalSerial } from "./serial.js";
import { AdminSecondFactor, OTP_FILE } from "./otp/index.js";
import { SigningKeyRing } from "./signing-keys/index.js";
import { CrlPublisher, RevocationIndex } from "./status/index.js";
import { FileStore, RedisStore, type PkiStore, type RevokedEntry } from "./store/index.js";
import { TrustGuard, LEDGER_FILE, TrustLedger, ledgerPkiId, setAsideForeignLedger } from "./trust/index.js";
import { withFileMutex } from "../storage/index.js";
import type { RedisClient } from "../redis/index.js";
import { adoptServedCertificate, renewServerCertificate, type ServerRenewal } from "./server-renewal.js";

export interface PkiRuntime {
  material: PkiMaterial;
  created: boolean;
  authority: CertificateAuthority;
  crl: CrlPublisher;
  store: PkiStore;
  /** The gateway's forward-signing keys: the active one signs, the JWKS publishes all in overlap. */
  signingKeys: SigningKeyRing;
  revocations: RevocationIndex;
  /** The admins' TOTP second factor for the actions that change the PKI (config `admin.otp`). */
  secondFactor: AdminSecondFactor;
  /** A key derived from the CA passphrase for the console's CSRF tokens (the same on every replica). */
  csrfKey: Uint8Array;
  /** The hash-chained audit log this gateway appends to. */
  audit: AuditLog;
  /** Whether the store still holds everything the trust ledger recorded (else: fail closed). */
  trust: TrustGuard;
  /** Called for every revocation (this instance's or, with Redis, any replica's). */
  onRevoked(listener: (entry: RevokedEntry) => void): void;
  /** Whether a serial is revoked: the store's record (reason, time), else the revocation index. */
  revocationStatus(serial: string): Promise<{ revoked: boolean; reason?: string; atMs?: number }>;
  /** What the TLS listeners serve as this start left it (server chain and key, CA bundle). */
  serving: ServingMaterial;
  /** Reads server.crt, server.key and ca-bundle.pem again and checks them (a TLS reload); never throws. */
  readServing(): Promise<ServingCheck>;
  /** Renews the gateway's server certificate (recorded, audited, written atomically); see server-renewal.ts. */
  renewServerCertificate(input: { keepKey: boolean; actor: string }): Promise<ServerRenewal>;
  /** Puts a reloaded server certificate of this CA on record (`certificate.adopt`) unless it is; resolves with whether it did. */
  adoptServing(material: ServingMaterial): Promise<boolean>;
  stop(): Promise<void>;
}

/** Where the PKI's files and state live, from the configuration. */
export function pkiLocations(config: Readonly<PosternConfig>) {
  const at = stateLocations(config);
  return {
    dir: config.pki.dir,
    storeDir: at.storeDir,
    ledgerPath: join(at.stateDir, LEDGER_FILE),
    otpPath: join(at.stateDir, OTP_FILE),
    signingKeysDir: at.signingKeysDir,
    auditPath: at.auditLogPath,
    passphraseSource: { dir: config.pki.dir, ...(config.pki.passphraseFile ? { passphraseFile: config.pki.passphraseFile } : {}) },
  };
}

/** The Redis PKI store under the configured key prefix (one hash tag: one Cluster slot). */
export function redisPkiStore(redis: RedisClient, config: Readonly<PosternConfig>): PkiStore {
  return new RedisStore({ redis, keyPrefix: `${config.redis.keyPrefix}{pki}:` });
}

/** A stable id for a CA: hex SHA-256 of its root certificate's DER. */
export function pkiIdOf(material: Pick<PkiMaterial, "root">): string {
  return createHash("sha256").update(new Uint8Array(material.root.cert.rawData)).digest("hex");
}

/**
 * The forward-signing key ring of this configuration, opened with the CA passphrase. The PKI
 * opens it at start; a cluster worker opens its own afterwards (the ring is made to be shared
 * and follows rotations with `reload()`). @throws when the passphrase or a key cannot be read.
 */
export async function openSigningKeys(config: Readonly<PosternConfig>, now: () => number): Promise<SigningKeyRing> {
  const where = pkiLocations(config);
  const { passphrase } = await resolvePassphrase(where.passphraseSource, false);
  return SigningKeyRing.open({ pkiDir: config.pki.dir, dir: where.signingKeysDir, passphrase, now });
}

/**
 * Builds the PKI side of the gateway, in an order that keeps a failed start from changing
 * anything: the store first (in embedded mode its lock, so a second instance stops before it
 * writes), then the plan of the PKI directory (in memory), then, holding the directory's lock,
 * every new certificate recorded in the trust ledger, the store and the audit log, and only
 * then the files. Then the trust check, the CRL publisher, the handshake revocation index and
 * the certificate authority. Whatever was opened is closed again when a step fails.
 */
export async function startPki(
  config: Readonly<PosternConfig>,
  deps: { log: Logger; metrics: MetricsRecorder; now: () => number; redis: RedisClient | undefined; publicBaseUrl: string; storeName: string },
): Promise<PkiRuntime> {
  const { log, metrics, now } = deps;
  const where = pkiLocations(config);
  const undo: Array<() => Promise<unknown>> = [];
  try {
    const store: PkiStore = deps.redis ? redisPkiStore(deps.redis, config) : await FileStore.open(where.storeDir, { now });
    undo.push(() => store.close());

    const planOptions: EnsurePkiOptions = {
      ...where.passphraseSource,
      hostnames: [...config.pki.hostnames],
      now,
      ...(config.pki.publicBaseUrl !== undefined ? { publicBaseUrl: config.pki.publicBaseUrl } : {}),
      defaultPublicBaseUrl: deps.publicBaseUrl,
      readOnly: config.pki.readOnly,
    };
    let plan = await planPki(planOptions);
    const audit = await AuditLog.open(where.auditPath, { now, retention: config.data.retention.audit });
    undo.push(() => audit.close());
    const commit = async (): Promise<TrustLedger> => {
      const ledger = await openLedger(where.ledgerPath, plan, log);
      if (!plan.created && ledger.state.pkiId === undefined) {
        const seeded = await seedLedger(ledger, store);
        if (seeded > 0) log.info("trust ledger started from the store's inventory", { ledger: where.ledgerPath, certificates: seeded });
      }
      await recordPlan({ plan, ledger, store, audit });
      await writePlannedFiles(plan.writes);
      return ledger;
    };
    let ledger: TrustLedger;
    if (plan.writes.length === 0) {
      ledger = await commit();
    } else {
      await mkdir(config.pki.dir, { recursive: true, mode: 0o700 });
      ledger = await withFileMutex(join(config.pki.dir, ".pki.lock"), async () => {
        // Another replica may have bootstrapped or re-issued while this one planned.
        if (deps.redis) plan = await planPki(planOptions);
        return commit();
      });
    }
    undo.push(() => ledger.close());
    for (const warning of plan.warnings) log.warn(warning);
    const material = plan.material;

    const { passphrase } = await resolvePassphrase(where.passphraseSource, false);
    const servingFiles = { serverCert: material.files.serverCert, serverKey: material.files.serverKey, caBundle: material.files.caBundle };
    const readServing = () => readServingMaterial(servingFiles, passphrase, now());
    const servingAtStart = await readServing();
    const serving: ServingMaterial = servingAtStart.ok ? servingAtStart.material : servingFromPlan(material);
    const signingKeys = await SigningKeyRing.open({ pkiDir: config.pki.dir, dir: where.signingKeysDir, passphrase, now });

    const trust = new TrustGuard({
      ledger,
      store,
      audit,
      storeName: deps.storeName,
      now,
      onChange: (status) => {
        metrics.pkiStateLost(!status.intact);
        if (status.intact) log.info("PKI state intact again: the store holds everything the trust ledger recorded", { ledger: where.ledgerPath });
        else log.error(status.summary, { code: "pki-state-lost", lostCertificates: status.lostCertificates.length, lostRevocations: status.lostRevocations.map((r) => r.serial) });
      },
    });
    await trust.check();

    const revocations = new RevocationIndex();
    const listeners: Array<(entry: RevokedEntry) => void> = [];
    const unsubscribe = await store.subscribeRevocations((entry) => {
      revocations.add(entry.serial);
      // Another replica's revocation: remember its key, never to be certified again.
      void store.getCertificate(entry.serial).then(
        (record) => ledger.noteRevocation(entry, record ? keyHashOfCertificate(record.pem) : undefined),
        () => ledger.noteRevocation(entry),
      );
      for (const listener of listeners) listener(entry);
    });
    undo.push(unsubscribe);

    if (!material.rootCrlPem) log.warn("no root CRL to publish: relying parties that check the root's CRL (openssl -crl_check_all, Node's crl option) will fail");
    const crl = new CrlPublisher({
      issuer: material.issuer,
      store,
      ledger: {
        revocations: () => ledger.state.revocations.values(),
        highWater: () => ledger.state.crlHighWater,
        recordCrlNumber: (n) => ledger.recordCrlNumber(n),
      },
      ...(material.rootCrlPem ? { rootCrlPem: material.rootCrlPem } : {}),
      validityMs: config.pki.crlValiditySeconds * 1000,
      now,
      onPublished: (published) => metrics.expiresAt("crl", published.nextUpdateMs),
      onError: (error) => log.error("CRL rebuild failed; the previous CRL stays published", { error: String(error) }),
    });
    undo.push(() => crl.stop());
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
      urls: material.publicBaseUrl !== undefined
        ? { crlUrl: `${material.publicBaseUrl}/crl`, ocspUrl: `${material.publicBaseUrl}/ocsp` }
        : { crlUrl: `${deps.publicBaseUrl}/crl`, ocspUrl: `${deps.publicBaseUrl}/ocsp` },
      renewalGraceSeconds: config.pki.renewalGraceSeconds,
      metrics,
      now,
      ledger,
      trust,
    });

    const refresh = async () => {
      // Picks up a key rotation made by `postern keys rotate` or another replica.
      if (await signingKeys.reload()) log.info("forward-signing key rotated", { kid: signingKeys.active().keyid });
      // The handshake index: the ledger's revocations (kept even if the store lost them) and,
      // catching up what a Redis subscriber missed while disconnected, the store's.
      for (const entry of ledger.state.revocations.values()) revocations.add(entry.serial);
      for (const entry of await store.listRevoked()) revocations.add(entry.serial);
      metrics.expiresAt("ca", material.issuer.cert.notAfter.getTime());
      if (crl.nextUpdateMs !== undefined) metrics.expiresAt("crl", crl.nextUpdateMs);
      const certificates = await certificateExpiries(store, now());
      metrics.expiresAt("earliest_certificate", certificates.earliestValidMs);
      metrics.certificatesExpired(certificates.expiredUnrevoked);
    };
    await refresh();
    const timer = setInterval(() => void refresh().catch(() => undefined), 60_000);
    timer.unref();
    // Two counts every 10 s; a full comparison when they fall short (an emptied Redis).
    const trustTimer = setInterval(() => void trust.quickCheck().catch(() => undefined), 10_000);
    trustTimer.unref();

    const secondFactor = new AdminSecondFactor({ path: where.otpPath, passphrase, policy: config.admin.otp, audit, now });

    return {
      material,
      created: plan.created,
      secondFactor,
      audit,
      csrfKey: new Uint8Array(hkdfSync("sha256", passphrase, pkiIdOf(material), "postern console csrf", 32)),
      authority,
      crl,
      store,
      signingKeys,
      revocations,
      trust,
      onRevoked: (listener) => listeners.push(listener),
      serving,
      readServing,
      adoptServing: (served) => adoptServedCertificate({ ledger, store, audit, issuingCertPem: material.issuingCertPem }, served.serverCertChainPem),
      renewServerCertificate: (input) => renewServerCertificate({ planOptions: { ...planOptions, passphrase }, ledger, store, audit, trust }, input),
      async revocationStatus(serial) {
        const record = await store.getCertificate(serial);
        if (record?.status !== "revoked") return { revoked: revocations.has(serial) };
        return { revoked: true, ...(record.revocationReason ? { reason: record.revocationReason } : {}), ...(record.revokedAtMs ? { atMs: record.revokedAtMs } : {}) };
      },
      async stop() {
        clearInterval(timer);
        clearInterval(trustTimer);
        await crl.stop();
        await unsubscribe();
        await audit.close();
        await ledger.close();
        await store.close();
      },
    };
  } catch (error) {
    for (const step of undo.reverse()) await step().catch(() => undefined);
    throw error;
  }
}

/**
 * Opens the trust ledger of the plan's CA. A ledger of another CA is set aside when this start
 * creates a new CA (the old one's files are gone), and refused otherwise.
 */
async function openLedger(path: string, plan: PkiPlan, log: Logger): Promise<TrustLedger> {
  const pkiId = pkiIdOf(plan.material);
  const foreign = await ledgerPkiId(path);
  if (foreign !== undefined && foreign !== pkiId) {
    if (!plan.created) {
      throw new PosternError("conflict", `the trust ledger ${path} belongs to another CA than the one in ${plan.material.dir}: point pki.stateDir at this CA's ledger`);
    }
    const aside = await setAsideForeignLedger(path, foreign);
    log.warn("a new CA was created; the previous CA's trust ledger was set aside", { ledger: aside });
  }
  return TrustLedger.open(path, pkiId);
}

/** The plan's material when the files cannot be read back (the first reload then replaces it). */
function servingFromPlan(material: PkiMaterial): ServingMaterial {
  const leaf = new X509Certificate(material.serverCertChainPem);
  return {
    serverCertChainPem: material.serverCertChainPem,
    serverKeyPem: material.serverKeyPem,
    caBundlePem: material.caBundlePem,
    serial: canonicalSerial(leaf.serialNumber),
    notAfterMs: Date.parse(leaf.validTo),
    inputDigest: "",
  };
}

/**
 * The earliest notAfter among certificates still valid at `nowMs` (neither revoked nor expired;
 * a year ahead when there is none, so an alert on it stays quiet), and how many unrevoked ones
 * have expired. An expired certificate must not hold the countdown below zero for ever: its
 * client is already refused at the handshake, and the count says it lapsed unrenewed.
 */
export async function certificateExpiries(store: PkiStore, nowMs: number): Promise<{ earliestValidMs: number; expiredUnrevoked: number }> {
  let earliest = Number.POSITIVE_INFINITY;
  let expiredUnrevoked = 0;
  let cursor: string | undefined;
  do {
    const page = await store.listCertificates({ status: "valid", limit: 1000, ...(cursor ? { cursor } : {}) });
    for (const item of page.items) {
      if (item.notAfterMs <= nowMs) expiredUnrevoked += 1;
      else earliest = Math.min(earliest, item.notAfterMs);
    }
    cursor = page.nextCursor;
  } while (cursor);
  return { earliestValidMs: Number.isFinite(earliest) ? earliest : nowMs + 365 * 86_400_000, expiredUnrevoked };
}

function stripUndefined<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as { [K in keyof T]: Exclude<T[K], undefined> };
}
