/**
 * What the web console needs beyond the PKI endpoints, all on the admin listener with the
 * admin role: its session (CSRF token, which actions need a code), one certificate with its
 * chain and OCSP answer, the live connections (and closing one, a guarded action), the audit
 * log with its chain's verification, and the last hour of data-plane outcomes.
 */
import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { AuditViewJson, CertificateDetailJson, ChainCertificateJson, ConnectionJson, ConsoleSessionJson, TrafficJson } from "../client/index.js";
import { PosternError } from "../errors.js";
import type { LiveConnection } from "../http/index.js";
import { type AdminSecondFactor, type AuditLog, type CertificateAuthority, SECOND_FACTOR_ACTIONS, canonicalSerial, verifyAuditLog } from "../pki/index.js";
import { csrfToken } from "./csrf.js";
import { describe } from "./pki-endpoints.js";
import type { AdminEndpoint } from "./router.js";

export interface ConsoleDeps {
  authority: CertificateAuthority;
  secondFactor: AdminSecondFactor;
  csrfKey: Uint8Array;
  /** Issuing CA then root (PEM), to show a leaf's chain. */
  caBundlePem: string;
  connections: () => LiveConnection[];
  closeConnection: (listener: string, id: number) => boolean;
  audit: AuditLog;
  auditPath: string;
  /** Data-plane outcomes per minute over the last hour, oldest first (the metrics room's TrafficHistory). */
  traffic: () => Array<{ atMs: number; outcomes: Record<string, number> }>;
}

const AUDIT_EVENTS_SHOWN = 200;

export function consoleEndpoints(deps: ConsoleDeps): AdminEndpoint[] {
  const caChain = splitPem(deps.caBundlePem).map((pem) => new X509Certificate(pem));
  return [
    {
      method: "GET",
      path: "/v1/console/session",
      auth: "admin",
      async handle(request) {
        const peer = request.peer!;
        const needs = await Promise.all(SECOND_FACTOR_ACTIONS.map(async (a) => [a, await deps.secondFactor.required(a)] as const));
        return { status: 200, json: { identity: peer.identity.id, serial: peer.identity.serial, csrfToken: csrfToken(deps.csrfKey, peer), secondFactor: Object.fromEntries(needs) } satisfies ConsoleSessionJson };
      },
    },
    {
      method: "GET",
      path: "/v1/certificates/:serial",
      auth: "admin",
      async handle(request) {
        const serial = canonicalSerial(request.params.serial!);
        const record = await deps.authority.certificate(serial);
        if (!record) throw new PosternError("not-found", "no certificate with this serial in the inventory");
        const leaf = new X509Certificate(record.pem);
        const chain = [leaf, ...caChain.filter((ca) => ca.fingerprint256 !== leaf.fingerprint256)];
        const ocsp = await deps.authority.ocspStatus(serial);
        return {
          status: 200,
          json: {
            ...describe(record),
            chain: chain.map(chainEntry),
            ocsp: ocsp.status === "revoked" ? { status: "revoked", revokedAt: new Date(ocsp.revokedAtMs).toISOString(), reason: ocsp.reason } : { status: ocsp.status },
          } satisfies CertificateDetailJson,
        };
      },
    },
    {
      method: "GET",
      path: "/v1/connections",
      auth: "admin",
      async handle() {
        const items = deps.connections().map((c) => ({ listener: c.listener, id: c.id, identity: c.identity, serial: c.serial, remote: c.remote, openedAt: new Date(c.openedAtMs).toISOString() }) satisfies ConnectionJson);
        return { status: 200, json: { items } };
      },
    },
    {
      method: "POST",
      path: "/v1/connections/:listener/:id/close",
      auth: "admin",
      secondFactor: "connection-close",
      async handle(request) {
        const { listener } = request.params;
        const id = Number(request.params.id);
        if (!Number.isSafeInteger(id)) throw new PosternError("bad-request", "the connection id is a number");
        const target = deps.connections().find((c) => c.listener === listener && c.id === id);
        if (!target || !deps.closeConnection(listener!, id)) throw new PosternError("not-found", "no such live connection");
        await deps.audit.append({ actor: request.peer!.identity.id, action: "connection.close", subject: target.serial, details: { listener, identity: target.identity, remote: target.remote } });
        return { status: 200, json: { closed: true } };
      },
    },
    {
      method: "GET",
      path: "/v1/audit",
      auth: "admin",
      async handle() {
        const text = await readFile(deps.auditPath, "utf8").catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? "" : Promise.reject(e)));
        const verification = text === "" ? { ok: true as const, lines: 0, head: "" } : await verifyAuditLog(deps.auditPath);
        const lines = text.split("\n").filter((l) => l !== "").slice(-AUDIT_EVENTS_SHOWN);
        const events = lines.flatMap((line) => {
          try {
            const e = JSON.parse(line) as AuditViewJson["events"][number];
            return [{ seq: e.seq, at: e.at, actor: e.actor, action: e.action, subject: e.subject, details: e.details }];
          } catch {
            return [];
          }
        });
        const shown = verification.ok ? { ok: true as const, lines: verification.lines, head: verification.head } : { ok: false as const, line: verification.line, reason: verification.reason };
        return { status: 200, json: { verification: shown, events } satisfies AuditViewJson };
      },
    },
    {
      method: "GET",
      path: "/v1/traffic",
      auth: "admin",
      async handle() {
        return { status: 200, json: { minutes: deps.traffic().map((m) => ({ at: new Date(m.atMs).toISOString(), outcomes: m.outcomes })) } satisfies TrafficJson };
      },
    },
  ];
}

function chainEntry(cert: X509Certificate): ChainCertificateJson {
  return {
    subject: cert.subject.replace(/\n/g, ", "),
    issuer: cert.issuer.replace(/\n/g, ", "),
    serial: cert.serialNumber.toLowerCase(),
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
    fingerprint256: cert.fingerprint256,
  };
}

function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}
