/**
 * Puts a start's PKI on record before any of its files is written: every built-in certificate
 * (root and issuing CA, server, demo, admin) that is new, or that the trust ledger has never
 * seen, goes to the ledger, the store and the audit log. So no certificate on disk is ever
 * missing from the inventory (OCSP `unknown`, not revocable) or unaudited.
 */
import { X509Certificate } from "node:crypto";
import type { AuditLog } from "../audit/index.js";
import type { BuiltinCertificate, BuiltinKind, PkiPlan } from "./bootstrap.js";
import { keyHashOfCertificate } from "../keys/index.js";
import { identityFromCertificate } from "../identity.js";
import type { CertificateRecord, PkiStore } from "../store/index.js";
import type { TrustLedger } from "../trust/index.js";

/** The inventory profile each built-in certificate is listed under. */
export const BUILTIN_PROFILES: Readonly<Record<BuiltinKind, string>> = {
  "root-ca": "root-ca",
  "issuing-ca": "issuing-ca",
  server: "server",
  demo: "client",
  admin: "admin",
};

/** The inventory record of a built-in certificate. */
export function builtinRecord(cert: BuiltinCertificate): CertificateRecord {
  const x = new X509Certificate(cert.pem);
  const identity = identityFromCertificate(x);
  return {
    serial: identity.serial,
    identity: identity.id,
    roles: identity.roles,
    fingerprint: identity.fingerprint,
    notBeforeMs: Date.parse(x.validFrom),
    notAfterMs: identity.notAfterMs,
    issuedAtMs: Date.parse(x.validFrom),
    pem: x.toString(),
    status: "valid",
    profile: BUILTIN_PROFILES[cert.kind],
  };
}

/**
 * Records the plan's certificates (see the header). One the ledger already knows and that is
 * not new is left alone, even when the store lacks it: that is for the trust check to report,
 * never to paper over. Returns how many were recorded.
 */
export async function recordPlan(input: { plan: PkiPlan; ledger: TrustLedger; store: PkiStore; audit: AuditLog }): Promise<number> {
  let recorded = 0;
  for (const cert of input.plan.certificates) {
    const record = builtinRecord(cert);
    if (!cert.issuedBecause && input.ledger.state.certificates.has(record.serial)) continue;
    // Store, then ledger: the ledger never expects what the store never had (see authority.ts).
    await input.store.putCertificate(record);
    await input.ledger.recordCertificates([{ serial: record.serial, fingerprint: record.fingerprint }]);
    const action = cert.issuedBecause === undefined ? "certificate.adopt" : cert.issuedBecause === "bootstrap" ? "certificate.bootstrap" : "certificate.reissue";
    await input.audit.append({
      actor: "postern",
      action,
      subject: record.serial,
      details: { kind: cert.kind, identity: record.identity, profile: record.profile, notAfterMs: record.notAfterMs, ...(cert.issuedBecause ? { reason: cert.issuedBecause } : {}) },
    });
    recorded++;
  }
  return recorded;
}

/**
 * A ledger started beside a store that already has an inventory (an upgrade from a version
 * without one) takes the store's certificates and revocations as its baseline.
 */
export async function seedLedger(ledger: TrustLedger, store: PkiStore): Promise<number> {
  let cursor: string | undefined;
  let seeded = 0;
  do {
    const page = await store.listCertificates({ limit: 1000, ...(cursor ? { cursor } : {}) });
    await ledger.recordCertificates(page.items.map((r) => ({ serial: r.serial, fingerprint: r.fingerprint })));
    await ledger.recordRevocations(
      page.items
        .filter((r) => r.status === "revoked")
        .map((r) => ({ entry: { serial: r.serial, reason: r.revocationReason ?? "unspecified", revokedAtMs: r.revokedAtMs ?? 0 }, keyHash: keyHashOfCertificate(r.pem) })),
    );
    seeded += page.items.length;
    cursor = page.nextCursor;
  } while (cursor);
  return seeded;
}
