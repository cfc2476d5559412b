/**
 * The PKI for commands that run beside the gateway or instead of it (`postern pki backup`,
 * `restore`, `reissue`): the same store, trust ledger and audit log `postern start` uses, from
 * the same configuration.
 */
import { X509Certificate, createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { pkiLocations, redisPkiStore } from "./runtime.js";
import { reachRedis, connectRedis, describeRedis } from "../redis/index.js";
import { usesRedis, type PosternConfig } from "../config/index.js";
import { PosternError } from "../errors.js";
import { AuditLog } from "./audit/index.js";
import { planPki, recordPlan, resolvePassphrase, writePlannedFiles } from "./ca/index.js";
import { identityFromCertificate } from "./identity.js";
import { keyHashOfCertificate } from "./keys/index.js";
import { FileStore, type PkiStore } from "./store/index.js";
import { TrustGuard, TrustLedger } from "./trust/index.js";
import { withFileMutex } from "../storage/index.js";

/** The PKI's store, trust ledger and audit log, opened for a command (backup, restore). */
export interface OfflinePki {
  store: PkiStore;
  ledger: TrustLedger;
  /** Checked once at open: a command must not issue into a store that lost state. */
  trust: TrustGuard;
  audit: AuditLog;
  passphrase: string;
  /** Where the store is, for messages. */
  storeName: string;
  close(): Promise<void>;
}

/**
 * Opens what `postern pki backup|restore` work on, from the same configuration the gateway
 * uses. `readOnly` (backup) reads an embedded store beside a running gateway; otherwise an
 * embedded store is locked, so a running gateway makes this fail (`conflict`, "stop Postern
 * first"). In Redis mode, commands and gateways share the store.
 */
export async function openPkiOffline(config: Readonly<PosternConfig>, opts: { readOnly: boolean }): Promise<OfflinePki> {
  const where = pkiLocations(config);
  const rootPath = join(config.pki.dir, "root-ca.crt");
  let rootPem: string;
  try {
    rootPem = await readFile(rootPath, "utf8");
  } catch {
    throw new PosternError("not-found", `no CA in ${config.pki.dir} (${rootPath}): point POSTERN_PKI_DIR or pki.dir at the gateway's PKI`);
  }
  const pkiId = createHash("sha256").update(new X509Certificate(rootPem).raw).digest("hex");
  const { passphrase } = await resolvePassphrase(where.passphraseSource, false);
  const ledger = await TrustLedger.open(where.ledgerPath, pkiId);
  const audit = await AuditLog.open(where.auditPath, { retention: config.data.retention.audit });
  let store: PkiStore;
  let storeName: string;
  let closeRedis = async () => undefined as unknown;
  if (usesRedis(config)) {
    const redis = await connectRedis({ ...config.redis, commandTimeoutSeconds: Math.max(config.redis.commandTimeoutSeconds, 10) });
    closeRedis = () => redis.quit().catch(() => redis.disconnect());
    try {
      await reachRedis(redis, describeRedis(config.redis));
    } catch (error) {
      await closeRedis();
      throw error;
    }
    store = redisPkiStore(redis, config);
    storeName = `${describeRedis(config.redis)} (key prefix ${config.redis.keyPrefix}{pki}:)`;
  } else {
    storeName = where.storeDir;
    try {
      store = opts.readOnly ? await FileStore.openReadOnly(where.storeDir) : await FileStore.open(where.storeDir);
    } catch (error) {
      if (error instanceof PosternError && error.code === "conflict") {
        throw new PosternError("conflict", `stop Postern first: ${error.message} (an embedded store has one writer)`);
      }
      throw error;
    }
  }
  const trust = new TrustGuard({ ledger, store, audit, storeName, now: Date.now });
  return {
    store,
    ledger,
    trust,
    audit,
    passphrase,
    storeName,
    async close() {
      await store.close();
      await ledger.close();
      await audit.close();
      await closeRedis();
    },
  };
}

/** What `postern pki reissue` did. */
export interface ReissueReport {
  issued: Array<{ kind: string; serial: string }>;
  /** The certificates they replace, revoked as superseded. */
  superseded: string[];
  publicBaseUrl: string | undefined;
}

/**
 * The explicit, audited re-issue of built-in certificates (`postern pki reissue`): new keys
 * and certificates for `kinds`, optionally naming a new public base URL; each recorded in the
 * ledger, the inventory and the audit log before its files are written, and the certificate
 * it replaces revoked as superseded. Run with the gateways stopped (embedded mode enforces it).
 */
export async function reissueBuiltins(
  config: Readonly<PosternConfig>,
  opts: { kinds: ReadonlyArray<"server" | "demo" | "admin">; moveToPublicBaseUrl?: string; actor: string; now?: () => number },
): Promise<ReissueReport> {
  const now = opts.now ?? Date.now;
  if (config.pki.readOnly) {
    // Before the lock file, which would be the first write into the directory.
    throw new PosternError("conflict", `pki.readOnly is set: re-issue where ${config.pki.dir} is writable and holds the issuing key (POSTERN_PKI_READ_ONLY=0), then replace the copies`);
  }
  const where = pkiLocations(config);
  const pki = await openPkiOffline(config, { readOnly: false });
  try {
    return await withFileMutex(join(config.pki.dir, ".pki.lock"), async () => {
      await pki.trust.check();
      pki.trust.assertIntact();
      const files = { server: "server.crt", demo: "demo-client.crt", admin: "admin.crt" } as const;
      const previous = await Promise.all(
        opts.kinds.map(async (kind) => new X509Certificate(await readFile(join(config.pki.dir, files[kind]), "utf8"))),
      );
      const plan = await planPki({
        ...where.passphraseSource,
        hostnames: [...config.pki.hostnames],
        now,
        ...(config.pki.publicBaseUrl !== undefined ? { publicBaseUrl: config.pki.publicBaseUrl } : {}),
        ...(opts.moveToPublicBaseUrl !== undefined ? { moveToPublicBaseUrl: opts.moveToPublicBaseUrl } : {}),
        reissue: opts.kinds,
      });
      await recordPlan({ plan, ledger: pki.ledger, store: pki.store, audit: pki.audit });
      await writePlannedFiles(plan.writes);
      const superseded: string[] = [];
      for (const cert of previous) {
        const serial = identityFromCertificate(cert).serial;
        const record = await pki.store.getCertificate(serial);
        if (!record || record.status === "revoked") continue;
        const atMs = now();
        await pki.ledger.recordRevocation({ serial, reason: "superseded", revokedAtMs: atMs }, keyHashOfCertificate(record.pem));
        await pki.store.revoke(serial, "superseded", atMs);
        await pki.audit.append({ actor: opts.actor, action: "certificate.revoke", subject: serial, details: { reason: "superseded", identity: record.identity, note: "replaced by postern pki reissue" } });
        superseded.push(serial);
      }
      return {
        issued: plan.certificates.filter((c) => c.issuedBecause === "requested").map((c) => ({ kind: c.kind, serial: identityFromCertificate(new X509Certificate(c.pem)).serial })),
        superseded,
        publicBaseUrl: plan.material.publicBaseUrl,
      };
    });
  } finally {
    await pki.close();
  }
}
