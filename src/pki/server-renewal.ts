/**
 * `postern cert renew-server` inside the running gateway: a new server certificate from the
 * gateway's own issuing CA, recorded (trust ledger, inventory, audit log) before its files are
 * written, and written atomically under the PKI directory's lock, the same order a start
 * follows. The listeners then reload it for new handshakes; open connections are untouched.
 */
import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { PosternError } from "../errors.js";
import { withFileMutex } from "../storage/index.js";
import type { AuditLog } from "./audit/index.js";
import { builtinRecord, planPki, recordPlan, writePlannedFiles, type EnsurePkiOptions } from "./ca/index.js";
import { identityFromCertificate } from "./identity.js";
import { keyHashOfCertificate } from "./keys/index.js";
import type { PkiStore } from "./store/index.js";
import type { TrustGuard, TrustLedger } from "./trust/index.js";

/** What a renewal did. */
export interface ServerRenewal {
  serial: string;
  notAfterMs: number;
  /** The certificate it replaces; it stays valid until its own notAfter (not revoked). */
  previousSerial: string;
  keptKey: boolean;
}

export interface ServerRenewalDeps {
  /** How the gateway plans its PKI directory (as at start). */
  planOptions: EnsurePkiOptions;
  ledger: TrustLedger;
  store: PkiStore;
  audit: AuditLog;
  trust: TrustGuard;
}

/**
 * Renews the gateway's server certificate (see the file header): a new key unless `keepKey`.
 * @throws PosternError `conflict` with pki.readOnly (renew where the directory is writable),
 * `pki-state-lost` while the store lacks what the ledger recorded, `forbidden` when `keepKey`
 * asks to certify a key whose certificate was revoked.
 */
export async function renewServerCertificate(deps: ServerRenewalDeps, input: { keepKey: boolean; actor: string }): Promise<ServerRenewal> {
  const { planOptions, ledger, store, audit, trust } = deps;
  if (planOptions.readOnly) {
    throw new PosternError(
      "conflict",
      `pki.readOnly is set: renew where ${planOptions.dir} is writable (postern pki reissue --only server with the bootstrap's configuration) and replace the Secret; the gateway reloads the new files by itself`,
    );
  }
  trust.assertIntact();
  return withFileMutex(join(planOptions.dir, ".pki.lock"), async () => {
    const previous = new X509Certificate(await readFile(join(planOptions.dir, "server.crt"), "utf8"));
    const previousSerial = identityFromCertificate(previous).serial;
    if (input.keepKey && ledger.state.revokedKeys.has(keyHashOfCertificate(previous.toString()))) {
      throw new PosternError("forbidden", "the server key's certificate was revoked: that key is never certified again (renew without --keep-key)");
    }
    const plan = await planPki({ ...planOptions, reissue: ["server"], reissueKeepingKey: input.keepKey });
    await recordPlan({ plan, ledger, store, audit });
    await writePlannedFiles(plan.writes);
    const renewed = plan.certificates.find((c) => c.kind === "server" && c.issuedBecause === "requested");
    if (!renewed) throw new PosternError("internal", "the plan did not re-issue the server certificate");
    const identity = identityFromCertificate(new X509Certificate(renewed.pem));
    await audit.append({
      actor: input.actor,
      action: "server.renew",
      subject: identity.serial,
      details: { previousSerial, keptKey: input.keepKey, notAfterMs: identity.notAfterMs },
    });
    return { serial: identity.serial, notAfterMs: identity.notAfterMs, previousSerial, keptKey: input.keepKey };
  });
}

/**
 * Puts a server certificate that a reload brought (a renewal made elsewhere: a new Secret, an
 * operator's openssl) on record, as a start would (`certificate.adopt`), so that OCSP answers
 * for it and it can be revoked. Only a certificate of this CA's issuing CA, and only once.
 * Resolves with whether it was recorded now.
 */
export async function adoptServedCertificate(deps: Pick<ServerRenewalDeps, "ledger" | "store" | "audit"> & { issuingCertPem: string }, leafPem: string): Promise<boolean> {
  const leaf = new X509Certificate(leafPem);
  const issuer = new X509Certificate(deps.issuingCertPem);
  if (!leaf.checkIssued(issuer) || !leaf.verify(issuer.publicKey)) return false;
  const record = builtinRecord({ kind: "server", pem: leaf.toString() });
  if (deps.ledger.state.certificates.has(record.serial)) return false;
  // Store, then ledger: the ledger never expects what the store never had.
  await deps.store.putCertificate(record);
  await deps.ledger.recordCertificates([{ serial: record.serial, fingerprint: record.fingerprint }]);
  await deps.audit.append({
    actor: "postern",
    action: "certificate.adopt",
    subject: record.serial,
    details: { kind: "server", identity: record.identity, profile: record.profile, notAfterMs: record.notAfterMs, reason: "reload" },
  });
  return true;
}
