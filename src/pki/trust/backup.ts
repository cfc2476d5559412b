/**
 * `postern pki backup` and `postern pki restore` on plain values: what goes into an archive
 * and how one goes back into a store. Consistent in the sense that matters: the trust ledger
 * is read first, so an archive holds at least every certificate and revocation the ledger had
 * when the backup began (later ones may be in it too). A restore never takes anything away:
 * it adds what the store lacks and revokes what the archive says is revoked.
 */
import type { AuditLog } from "../audit/index.js";
import { ARCHIVE_FORMAT, type PkiArchive } from "./backup-archive.js";
import { PosternError } from "../../errors.js";
import type { CertificateRecord, PkiStore } from "../store/index.js";
import type { TrustLedger } from "./ledger.js";

const RESTORE_CHUNK = 500;

/** Reads everything a restore needs: the ledger first, then the store. */
export async function takeBackup(input: {
  store: PkiStore;
  ledger: TrustLedger;
  auditHead: PkiArchive["auditHead"];
  now: () => number;
}): Promise<PkiArchive> {
  const { store, ledger } = input;
  await ledger.refresh();
  const state = ledger.state;
  const mark = { certificates: state.certificates.size, revocations: state.revocations.size, crlHighWater: state.crlHighWater.toString() };
  const certificates: CertificateRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.listCertificates({ limit: 1000, ...(cursor ? { cursor } : {}) });
    certificates.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  const crl = await store.getCrlState();
  return {
    format: ARCHIVE_FORMAT,
    v: 1,
    createdAt: new Date(input.now()).toISOString(),
    pkiId: ledger.pkiId,
    certificates,
    tokens: await store.listTokens(input.now()),
    crl: crl ? { crlNumber: crl.crlNumber.toString(), thisUpdateMs: crl.thisUpdateMs, nextUpdateMs: crl.nextUpdateMs, digest: crl.digest } : null,
    ledger: mark,
    auditHead: input.auditHead,
  };
}

/** What the archive lacks compared with the trust ledger. */
export interface ArchiveGap {
  certificates: string[];
  revocations: string[];
}

/** Certificates and revocations the ledger recorded that the archive does not hold. */
export function archiveGap(archive: PkiArchive, ledger: TrustLedger): ArchiveGap {
  const state = ledger.state;
  const bySerial = new Map(archive.certificates.map((r) => [r.serial, r]));
  return {
    certificates: state.expectedCertificates().filter((serial) => !bySerial.has(serial)),
    revocations: [...state.revocations.keys()].filter((serial) => !state.accepted.has(serial) && bySerial.get(serial)?.status !== "revoked"),
  };
}

export interface RestoreReport {
  certificatesAdded: number;
  revocationsApplied: number;
  tokensAdded: number;
  /** Serials still missing from the store afterwards, accepted as lost (`force`). */
  acceptedLost: string[];
  gap: ArchiveGap;
}

/**
 * Restores `archive` into `store`. Refuses (`conflict`) an archive of another CA, and one
 * older than the ledger (lacking certificates or revocations it recorded) unless `force`;
 * forced, the certificates still missing afterwards are recorded in the ledger as accepted
 * losses (their revocations, kept in the ledger, stay enforced). The cRLNumber never goes
 * back: the store's becomes at least the ledger's high-water mark.
 */
export async function restoreBackup(input: {
  archive: PkiArchive;
  store: PkiStore;
  ledger: TrustLedger;
  audit: Pick<AuditLog, "append">;
  force: boolean;
  actor: string;
  now: () => number;
}): Promise<RestoreReport> {
  const { archive, store, ledger } = input;
  if (archive.pkiId !== ledger.pkiId) {
    throw new PosternError("conflict", `the backup belongs to another CA (root ${archive.pkiId.slice(0, 16)}…, this one is ${ledger.pkiId.slice(0, 16)}…)`);
  }
  await ledger.refresh();
  const gap = archiveGap(archive, ledger);
  if (!input.force && (gap.certificates.length > 0 || gap.revocations.length > 0)) {
    const examples = [...gap.revocations.map((s) => `revoked ${s}`), ...gap.certificates].slice(0, 3).join(", ");
    throw new PosternError(
      "conflict",
      `the backup (${archive.createdAt}) is older than the trust ledger ${ledger.path}: it lacks ${gap.certificates.length} certificate(s) and ${gap.revocations.length} revocation(s) recorded since (${examples}). ` +
        "Restore a newer backup, or pass --force: the ledger's revocations stay enforced and the missing certificates are accepted as lost",
    );
  }
  const report: RestoreReport = { certificatesAdded: 0, revocationsApplied: 0, tokensAdded: 0, acceptedLost: [], gap };
  const missing = new Set(await store.missingCertificates(archive.certificates.map((r) => r.serial)));
  // In chunks: the store commits concurrent writes together (one fsync, one round trip).
  for (let i = 0; i < archive.certificates.length; i += RESTORE_CHUNK) {
    await Promise.all(
      archive.certificates.slice(i, i + RESTORE_CHUNK).map(async (record) => {
        if (missing.has(record.serial)) {
          await store.putCertificate(record);
          report.certificatesAdded++;
          if (record.status === "revoked") report.revocationsApplied++;
        } else if (record.status === "revoked") {
          const before = await store.getCertificate(record.serial);
          if (before?.status !== "revoked") {
            await store.revoke(record.serial, record.revocationReason ?? "unspecified", record.revokedAtMs ?? input.now());
            report.revocationsApplied++;
          }
        }
      }),
    );
  }
  // The ledger's revocations win over an archive that predates them (forced restores).
  for (const r of ledger.state.revocations.values()) {
    const rec = await store.getCertificate(r.serial);
    if (rec && rec.status !== "revoked") {
      await store.revoke(r.serial, r.reason, r.revokedAtMs);
      report.revocationsApplied++;
    }
  }
  for (const token of archive.tokens) {
    if (!(token.expiresAtMs > input.now())) continue;
    try {
      await store.putToken(token);
      report.tokensAdded++;
    } catch (error) {
      if (!(error instanceof PosternError && error.code === "conflict")) throw error;
    }
  }
  const archived = archive.crl ? BigInt(archive.crl.crlNumber) : 0n;
  const floor = [archived, ledger.state.crlHighWater].reduce((a, b) => (a > b ? a : b));
  if (floor > 0n) await store.putCrlState({ crlNumber: floor, thisUpdateMs: 0, nextUpdateMs: 0, digest: "" });
  if (input.force) {
    const stillMissing = await store.missingCertificates(ledger.state.expectedCertificates());
    await ledger.acceptLoss(stillMissing, input.actor, input.now());
    report.acceptedLost = stillMissing;
  }
  await input.audit.append({
    actor: input.actor,
    action: "pki.restore",
    subject: archive.pkiId,
    details: {
      backupCreatedAt: archive.createdAt,
      certificatesAdded: report.certificatesAdded,
      revocationsApplied: report.revocationsApplied,
      tokensAdded: report.tokensAdded,
      forced: input.force,
      acceptedLost: report.acceptedLost.length,
    },
  });
  return report;
}
