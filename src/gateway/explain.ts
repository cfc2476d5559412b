import { X509Certificate } from "node:crypto";
import { PosternError } from "../errors.js";
import { identityFromCertificate, type ClientIdentity } from "../pki/index.js";
import { bucketKey, limitFor, type RateLimiter } from "../ratelimit/index.js";
import { admitPeer, caChainVerifier } from "../tls/index.js";
import { isAuthorized } from "./authorize.js";
import type { RouteTable } from "./routes.js";

export type CheckOutcome = "pass" | "fail" | "skip";

export interface ExplainCheck {
  check: "chain" | "revocation" | "expiry" | "route" | "authorization" | "rate-limit";
  outcome: CheckOutcome;
  detail: string;
}

export interface Explanation {
  allowed: boolean;
  identity?: ClientIdentity;
  checks: ExplainCheck[];
}

export interface ExplainDeps {
  routes: () => RouteTable;
  /** PEM of the issuing and root CA certificates. */
  caBundlePem: string;
  isRevoked: (serial: string) => Promise<{ revoked: boolean; reason?: string; atMs?: number }>;
  rateLimiter: RateLimiter;
  now: () => number;
}

export interface ExplainQuery {
  /** PEM of a client certificate (leaf first); or give `identity` to skip the certificate checks. */
  certificatePem?: string;
  identity?: { id: string; roles: string[] };
  method: string;
  path: string;
}

/**
 * The policy dry-run: would a message from this certificate (or identity) to method + path be
 * let through, and which check decides? Runs the same checks, in the same order, as a real
 * handshake and request, but takes no token and writes nothing.
 */
export async function explainAccess(query: ExplainQuery, deps: ExplainDeps): Promise<Explanation> {
  const checks: ExplainCheck[] = [];
  let identity: ClientIdentity | undefined;
  if (query.certificatePem) {
    const leaf = parseChain(query.certificatePem)[0]!;
    identity = identityFromCertificate(leaf);
    const revocation = await deps.isRevoked(identity.serial);
    // The verdict is the handshake's own rule (admitPeer), on what a full handshake would have
    // found: the chain as OpenSSL would check it, this certificate's dates, the revocation.
    const chainsToCa = caChainVerifier(deps.caBundlePem);
    const chained = chainsToCa(leaf.raw);
    const admission = admitPeer(
      {
        authorized: chained,
        authorizationError: chained ? undefined : "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
        certificate: { der: leaf.raw, identity, notBeforeMs: Date.parse(leaf.validFrom) },
      },
      { nowMs: deps.now(), anonymous: false, expiredGraceSeconds: 0, isRevoked: () => revocation.revoked, chainsToCa },
    );
    const refused = admission.admitted ? undefined : admission.reason;
    checks.push(
      chained
        ? { check: "chain", outcome: "pass", detail: `chains to ${leaf.issuer.replace(/\n/g, ", ")}` }
        : { check: "chain", outcome: "fail", detail: `no Postern CA issued "${leaf.subject.replace(/\n/g, ", ")}" (unknown_ca)` },
      revocation.revoked
        ? { check: "revocation", outcome: "fail", detail: `revoked${revocation.reason ? ` (${revocation.reason})` : ""}${revocation.atMs ? ` at ${new Date(revocation.atMs).toISOString()}` : ""}` }
        : { check: "revocation", outcome: "pass", detail: "not revoked" },
      expiryCheck(leaf, refused),
    );
  } else if (query.identity) {
    identity = { id: query.identity.id, roles: query.identity.roles, serial: "", fingerprint: "", notAfterMs: Number.POSITIVE_INFINITY };
    for (const check of ["chain", "revocation", "expiry"] as const) checks.push({ check, outcome: "skip", detail: "no certificate given" });
  } else {
    throw new PosternError("bad-request", "give a certificate or an identity");
  }

  let route;
  try {
    route = deps.routes().find(query.method.toUpperCase(), query.path).route;
    checks.push({ check: "route", outcome: "pass", detail: `route ${route.name} -> backend ${route.backend}` });
  } catch (error) {
    checks.push({ check: "route", outcome: "fail", detail: error instanceof PosternError ? `${error.code}: ${error.message}` : "no route" });
  }
  if (route) {
    const allowed = isAuthorized(identity, route.allow);
    const wanted = [...route.allow.roles.map((r) => `role ${r}`), ...route.allow.identities].join(", ") || "nobody";
    checks.push({
      check: "authorization",
      outcome: allowed ? "pass" : "fail",
      detail: `${identity.id} with roles [${identity.roles.join(", ")}]; the route admits ${wanted}`,
    });
    if (route.rateLimit) {
      const limit = limitFor(identity, route.rateLimit);
      const tokens = await deps.rateLimiter.peek(bucketKey(route.name, identity), limit);
      checks.push({
        check: "rate-limit",
        outcome: tokens >= 1 ? "pass" : "fail",
        detail: `${limit.ratePerSecond}/s, burst ${limit.burst}; ${Math.floor(tokens)} available now`,
      });
    } else {
      checks.push({ check: "rate-limit", outcome: "skip", detail: "the route has no rate limit" });
    }
  } else {
    checks.push({ check: "authorization", outcome: "skip", detail: "no route" }, { check: "rate-limit", outcome: "skip", detail: "no route" });
  }
  return { allowed: checks.every((c) => c.outcome !== "fail"), identity, checks };
}

function parseChain(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new PosternError("bad-request", "no PEM certificate found");
  try {
    return blocks.map((block) => new X509Certificate(block));
  } catch {
    throw new PosternError("bad-request", "a certificate does not parse");
  }
}

/** The expiry check as the handshake rule decided it (`expired`, `not_yet_valid`), with the dates. */
function expiryCheck(leaf: X509Certificate, refused: string | undefined): ExplainCheck {
  const from = new Date(Date.parse(leaf.validFrom)).toISOString();
  const to = new Date(Date.parse(leaf.validTo)).toISOString();
  if (refused === "not_yet_valid") return { check: "expiry", outcome: "fail", detail: `not valid before ${from}` };
  if (refused === "expired") return { check: "expiry", outcome: "fail", detail: `expired at ${to}` };
  return { check: "expiry", outcome: "pass", detail: `valid until ${to}` };
}
