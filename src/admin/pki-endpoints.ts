import type { CertificateJson, IdentityRevokedJson, IssuedCertificateJson, IssuedPkcs12Json, TokenJson } from "../client/index.js";
import { PosternError } from "../errors.js";
import { type CertificateAuthority, isKeyAlgorithm, REVOCATION_REASONS, type CertificateRecord, type CertificateStatus, type RevocationReason } from "../pki/index.js";
import { parseDuration } from "../config/index.js";
import { optionalStrings, requireString, type AdminEndpoint, type AdminRequest } from "./router.js";

/** The PKI's admin API: tokens, enrollment, issuance, renewal, revocation, inventory. */
export function pkiEndpoints(ca: CertificateAuthority): AdminEndpoint[] {
  const actor = (request: AdminRequest) => request.peer?.identity.id ?? "anonymous";
  return [
    {
      method: "POST",
      path: "/v1/tokens",
      auth: "admin",
      secondFactor: "token",
      async handle(request) {
        const body = await request.json();
        const ttl = body.ttl ?? "15m";
        const created = await ca.createToken({
          identity: requireString(body, "identity"),
          ...optional("roles", optionalStrings(body, "roles")),
          ...optional("profile", optionalString(body, "profile")),
          ttlSeconds: typeof ttl === "number" ? ttl : parseDuration(String(ttl), "ttl"),
          actor: actor(request),
        });
        return { status: 201, json: created satisfies TokenJson };
      },
    },
    {
      method: "POST",
      path: "/v1/enroll",
      auth: "anonymous",
      async handle(request) {
        const body = await request.json();
        return { status: 201, json: await ca.enroll({ token: requireString(body, "token"), csrPem: requireString(body, "csr") }) };
      },
    },
    {
      method: "POST",
      path: "/v1/certificates",
      auth: "admin",
      secondFactor: "issue",
      async handle(request) {
        const body = await request.json();
        const issued = await ca.issueFromCsr({
          csrPem: requireString(body, "csr"),
          ...optional("identity", optionalString(body, "identity")),
          ...optional("roles", optionalStrings(body, "roles")),
          ...optional("profile", optionalString(body, "profile")),
          ...optional("lifetimeSeconds", optionalLifetime(body)),
          actor: actor(request),
        });
        return { status: 201, json: issued satisfies IssuedCertificateJson };
      },
    },
    {
      method: "POST",
      path: "/v1/certificates/pkcs12",
      auth: "admin",
      secondFactor: "issue",
      async handle(request) {
        const body = await request.json();
        const keyType = body.keyType ?? "P-256";
        if (!isKeyAlgorithm(keyType)) throw new PosternError("bad-request", "keyType must be P-256, P-384, Ed25519, RSA-2048, RSA-3072 or RSA-4096");
        const { result, pfx } = await ca.issuePkcs12({
          identity: requireString(body, "identity"),
          password: requireString(body, "password"),
          keyAlgorithm: keyType,
          ...optional("roles", optionalStrings(body, "roles")),
          ...optional("profile", optionalString(body, "profile")),
          ...optional("lifetimeSeconds", optionalLifetime(body)),
          actor: actor(request),
        });
        return { status: 201, json: { ...result, pkcs12: Buffer.from(pfx).toString("base64") } satisfies IssuedPkcs12Json };
      },
    },
    {
      method: "GET",
      path: "/v1/certificates",
      auth: "admin",
      async handle(request) {
        const q = request.query;
        const status = q.get("status");
        if (status !== null && status !== "valid" && status !== "revoked") throw new PosternError("bad-request", "status must be valid or revoked");
        const within = q.get("expiringWithin");
        const limit = q.get("limit");
        const page = await ca.list({
          ...(status ? { status: status as CertificateStatus } : {}),
          ...(q.get("identity") ? { identity: q.get("identity")! } : {}),
          ...(within ? { expiringBeforeMs: Date.now() + parseDuration(within, "expiringWithin") * 1000 } : {}),
          ...(q.get("cursor") ? { cursor: q.get("cursor")! } : {}),
          ...(limit ? { limit: Number(limit) } : {}),
        });
        return { status: 200, json: { items: page.items.map(describe), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) } };
      },
    },
    {
      method: "POST",
      path: "/v1/certificates/:serial/revoke",
      auth: "admin",
      secondFactor: "revoke",
      async handle(request) {
        const body = await request.json();
        const record = await ca.revoke({ serial: request.params.serial!, reason: reasonOf(body), actor: actor(request) });
        return { status: 200, json: describe(record) };
      },
    },
    {
      method: "POST",
      path: "/v1/identities/revoke",
      auth: "admin",
      secondFactor: "revoke",
      async handle(request) {
        const body = await request.json();
        const serials = await ca.revokeIdentity({ identity: requireString(body, "identity"), reason: reasonOf(body), actor: actor(request) });
        return { status: 200, json: { identity: String(body.identity), revoked: serials } satisfies IdentityRevokedJson };
      },
    },
    {
      method: "POST",
      path: "/v1/renew",
      auth: "client",
      allowExpired: true,
      async handle(request) {
        const body = await request.json();
        const csr = optionalString(body, "csr");
        return { status: 201, json: await ca.renew({ peerCertDer: request.peer!.certDer, ...(csr ? { csrPem: csr } : {}) }) };
      },
    },
  ];
}

/** A certificate record as the admin API shows it. */
export function describe(record: CertificateRecord): CertificateJson {
  return {
    serial: record.serial,
    identity: record.identity,
    roles: record.roles,
    status: record.status,
    ...(record.profile !== undefined ? { profile: record.profile } : {}),
    fingerprint: record.fingerprint,
    notBefore: new Date(record.notBeforeMs).toISOString(),
    notAfter: new Date(record.notAfterMs).toISOString(),
    ...(record.revokedAtMs ? { revokedAt: new Date(record.revokedAtMs).toISOString() } : {}),
    ...(record.revocationReason ? { revocationReason: record.revocationReason } : {}),
    certificate: record.pem,
  };
}

function reasonOf(body: Record<string, unknown>): RevocationReason {
  const reason = body.reason ?? "unspecified";
  if (typeof reason !== "string" || !Object.hasOwn(REVOCATION_REASONS, reason) || reason === "removeFromCRL") {
    throw new PosternError("bad-request", `reason must be one of ${Object.keys(REVOCATION_REASONS).filter((r) => r !== "removeFromCRL").join(", ")}`);
  }
  return reason as RevocationReason;
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") throw new PosternError("bad-request", `${key} must be a non-empty string`);
  return value;
}

function optionalLifetime(body: Record<string, unknown>): number | undefined {
  const value = body.lifetime;
  if (value === undefined) return undefined;
  return typeof value === "number" ? value : parseDuration(String(value), "lifetime");
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
