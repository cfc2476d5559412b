/**
 * Issuance profiles: what a certificate issued under a name may contain. Pure functions; the
 * defaults are strict (24 h lifetime, client identities only, no extra SANs, no RSA < 2048).
 *
 * Patterns are globs: `*` matches within one segment (not across "/" for identities and URIs,
 * not across "." for DNS names), `**` matches anything. SAN patterns may be typed with a
 * "dns:", "uri:" or "ip:" prefix; an untyped pattern applies to every SAN type.
 */
import { PosternError } from "../../errors.js";
import type { KeyAlgorithm } from "../keys/index.js";
import { matchesGlob } from "../../config/index.js";

/** Key families a profile may allow; RSA sizes are bounded by `minRsaBits`. */
export type ProfileKeyType = "P-256" | "P-384" | "Ed25519" | "RSA";

export interface CertificateProfile {
  readonly name: string;
  /** Upper bound on notAfter - now; longer requests are shortened to it. */
  readonly maxLifetimeSeconds: number;
  /** Used when a request names no lifetime; at most maxLifetimeSeconds. */
  readonly defaultLifetimeSeconds: number;
  readonly allowedIdentityPatterns: readonly string[];
  /** SANs beyond the identity URI itself; empty allows none. */
  readonly allowedSanPatterns: readonly string[];
  /** Roles (OU values) certificates under this profile may carry. */
  readonly roles: readonly string[];
  readonly allowedKeyTypes: readonly ProfileKeyType[];
  readonly minRsaBits: number;
  /** Whether the CA may make the key (EST serverkeygen); off by default: keys are made where they are used. */
  readonly serverKeygen: boolean;
}

export type ProfileInput = Partial<CertificateProfile> & { name: string };

const HOUR_S = 3600;
/** Lifetimes longer than this are a configuration error, whatever the profile says. */
export const MAX_PROFILE_LIFETIME_SECONDS = 90 * 24 * HOUR_S;
/** RSA moduli larger than this are refused (verification cost, no security gain). */
export const MAX_RSA_BITS = 8192;

export const DEFAULT_CLIENT_PROFILE: CertificateProfile = defineProfile({ name: "client" });

/** Fills defaults, checks every field (errors name the field), and freezes the result. */
export function defineProfile(input: ProfileInput): CertificateProfile {
  const maxLifetimeSeconds = input.maxLifetimeSeconds ?? 24 * HOUR_S;
  const profile: CertificateProfile = {
    name: input.name,
    maxLifetimeSeconds,
    defaultLifetimeSeconds: input.defaultLifetimeSeconds ?? maxLifetimeSeconds,
    allowedIdentityPatterns: [...(input.allowedIdentityPatterns ?? ["spiffe://postern.local/client/*"])],
    allowedSanPatterns: [...(input.allowedSanPatterns ?? [])],
    roles: [...(input.roles ?? ["client"])],
    allowedKeyTypes: [...(input.allowedKeyTypes ?? ["P-256", "P-384", "Ed25519", "RSA"])],
    minRsaBits: input.minRsaBits ?? 2048,
    serverKeygen: input.serverKeygen ?? false,
  };
  const bad = (field: string, why: string): never => {
    throw new PosternError("bad-request", `profile ${JSON.stringify(input.name)}: ${field} ${why}`);
  };
  if (!/^[a-z0-9][a-z0-9._-]{0,62}$/i.test(profile.name)) bad("name", "must be 1-63 letters, digits, . _ -");
  for (const [field, v] of [["maxLifetimeSeconds", maxLifetimeSeconds], ["defaultLifetimeSeconds", profile.defaultLifetimeSeconds]] as const) {
    if (!Number.isInteger(v) || v < 60 || v > MAX_PROFILE_LIFETIME_SECONDS) bad(field, `must be an integer in 60..${MAX_PROFILE_LIFETIME_SECONDS}`);
  }
  if (profile.defaultLifetimeSeconds > maxLifetimeSeconds) bad("defaultLifetimeSeconds", "exceeds maxLifetimeSeconds");
  if (profile.allowedIdentityPatterns.length === 0) bad("allowedIdentityPatterns", "must not be empty");
  for (const p of [...profile.allowedIdentityPatterns, ...profile.allowedSanPatterns]) if (p.trim() === "") bad("patterns", "must not be blank");
  for (const k of profile.allowedKeyTypes) if (!["P-256", "P-384", "Ed25519", "RSA"].includes(k)) bad("allowedKeyTypes", `has unknown ${k}`);
  if (!Number.isInteger(profile.minRsaBits) || profile.minRsaBits < 2048) bad("minRsaBits", "must be an integer >= 2048");
  return Object.freeze(profile);
}

export function identityAllowed(profile: CertificateProfile, identity: string): boolean {
  return profile.allowedIdentityPatterns.some((p) => matchesGlob(p, identity, "/"));
}

export type SanType = "dns" | "uri" | "ip";

/** Whether a SAN value of the given type matches one of the profile's SAN patterns. */
export function sanAllowed(profile: CertificateProfile, type: SanType, value: string): boolean {
  const v = type === "dns" ? value.toLowerCase() : value;
  return profile.allowedSanPatterns.some((raw) => {
    const typed = /^(dns|uri|ip):/i.exec(raw);
    if (typed && typed[1]?.toLowerCase() !== type) return false;
    const pattern = typed ? raw.slice(typed[0].length) : raw;
    return matchesGlob(type === "dns" ? pattern.toLowerCase() : pattern, v, type === "dns" ? "." : "/");
  });
}

export function rolesAllowed(profile: CertificateProfile, roles: readonly string[]): boolean {
  return roles.every((r) => profile.roles.includes(r));
}

/** Whether a key of this kind may be certified; `rsaBits` is required for RSA. */
export function keyAllowed(profile: CertificateProfile, key: { family: ProfileKeyType; rsaBits?: number }): boolean {
  if (!profile.allowedKeyTypes.includes(key.family)) return false;
  if (key.family !== "RSA") return true;
  const bits = key.rsaBits ?? 0;
  return bits >= profile.minRsaBits && bits <= MAX_RSA_BITS;
}

export function keyFamilyOf(algorithm: KeyAlgorithm): { family: ProfileKeyType; rsaBits?: number } {
  if (algorithm.startsWith("RSA-")) return { family: "RSA", rsaBits: Number(algorithm.slice(4)) };
  return { family: algorithm as ProfileKeyType };
}

/** The lifetime to issue: the request (or the profile default), never above the profile max. */
export function lifetimeFor(profile: CertificateProfile, requestedSeconds?: number): number {
  const wanted = requestedSeconds ?? profile.defaultLifetimeSeconds;
  if (!Number.isFinite(wanted) || wanted <= 0) {
    throw new PosternError("bad-request", "lifetimeSeconds must be a positive number");
  }
  return Math.min(Math.floor(wanted), profile.maxLifetimeSeconds);
}
