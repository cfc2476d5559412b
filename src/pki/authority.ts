import { createHash, randomBytes, X509Certificate } from "node:crypto";
import { PosternError } from "../errors.js";
import type { MetricsRecorder } from "../metrics/index.js";
import type { AuditLog } from "./audit/index.js";
import type { PkiMaterial } from "./ca/index.js";
import { type CrlPublisher, type OcspCertStatus, respondOcsp } from "./status/index.js";
import { issueFromCsrNow, parseCsr, type ParsedCsr, issueLeafDer, type IssuedCertificate, identityAllowed, keyAllowed, keyFamilyOf, lifetimeFor, rolesAllowed, type CertificateProfile } from "./issue/index.js";
import { identityFromCertificate, type ClientIdentity } from "./identity.js";
import { type KeyAlgorithm, generateKeyPair, issuePkcs12, keyAlgorithmOf, keyHashOfCertificate, keyHashOfSpki, pemCertificatesToDer } from "./keys/index.js";
import { parseSerial } from "./serial.js";
import type { CertificateFilter, CertificatePage, CertificateRecord, PkiStore, RevocationReason } from "./store/index.js";
import type { TrustGuard, TrustLedger } from "./trust/index.js";

export interface AuthorityOptions {
  material: PkiMaterial;
  store: PkiStore;
  audit: AuditLog;
  crl: CrlPublisher;
  profiles: ReadonlyMap<string, CertificateProfile>;
  defaultProfile: string;
  urls: { crlUrl: string; ocspUrl: string };
  /** Seconds after notAfter during which a certificate may still renew itself; 0 = never. */
  renewalGraceSeconds: number;
  metrics: MetricsRecorder;
  now: () => number;
  /** The CA's durable record: every issuance and revocation reaches it before the store. */
  ledger: TrustLedger;
  /** Issuing waits while the store has lost state the ledger recorded. */
  trust: Pick<TrustGuard, "assertIntact">;
  /** Refused enrollments a token survives; the next one deletes it. Default 5. */
  maxTokenFailures?: number;
}

export interface IssuedResult {
  serial: string;
  identity: string;
  roles: string[];
  profile: string;
  notAfter: string;
  fingerprint: string;
  /** Leaf PEM followed by the issuing CA. */
  certificate: string;
}

/** An enrollment's answer; with server-side key generation, also the key the CA made (PKCS#8 DER, unencrypted). */
export interface EnrolledResult extends IssuedResult {
  privateKeyPkcs8Der?: Uint8Array;
}

/** Who asks: an admin's identity, `token:<identity>` for enrollment, or a renewing client. */
export type Actor = string;

/** The door a request came through, when not the admin API: recorded as `via` in the audit line. */
export type Channel = "est";

const TOKEN_PATTERN = /^pt_[A-Za-z0-9_-]{43}$/;
const MAX_TOKEN_TTL_SECONDS = 7 * 86_400;
/** Built-in CA certificates: in the inventory, but revoked only in their issuer's (the root's) CRL. */
const CA_PROFILES = new Set(["root-ca", "issuing-ca"]);

/**
 * The online certificate authority: enrollment tokens, issuance (CSR, token enrollment,
 * server-side keys as PKCS#12), renewal, revocation, OCSP and CRL, every step recorded in the
 * store and appended to the audit log before it is answered. It is the PKI's front door for
 * every caller (admin API, CLI, EST later), which is why one class holds all the verbs (over
 * ~300 lines); each verb delegates the work to its room (issue, keys, status, store, trust).
 */
export class CertificateAuthority {
  constructor(private readonly o: AuthorityOptions) {}

  /** Whether a profile of this name is configured. */
  hasProfile(name: string): boolean {
    return this.o.profiles.has(name);
  }

  /** The CA chain clients trust (the issuing CA, then the root), as DER. */
  caCertificatesDer(): Uint8Array[] {
    return pemCertificatesToDer(this.o.material.caBundlePem);
  }

  profile(name: string | undefined): CertificateProfile {
    const profile = this.o.profiles.get(name ?? this.o.defaultProfile);
    if (!profile) throw new PosternError("bad-request", `no profile named ${JSON.stringify(name)}`);
    return profile;
  }

  /**
   * A one-time enrollment token, bound to one identity, valid `ttlSeconds`. Only its hash is
   * stored. An identity or role the profile would refuse at enrollment is refused now
   * (`csr-forbidden-name`, 403), and nothing is stored.
   */
  async createToken(input: { identity: string; roles?: string[]; profile?: string; ttlSeconds: number; actor: Actor }): Promise<{ token: string; expiresAt: string }> {
    const profile = this.profile(input.profile);
    if (!Number.isInteger(input.ttlSeconds) || input.ttlSeconds < 1 || input.ttlSeconds > MAX_TOKEN_TTL_SECONDS) {
      throw new PosternError("bad-request", `ttl must be 1 s to ${MAX_TOKEN_TTL_SECONDS / 86_400} days`);
    }
    const roles = input.roles ?? [...profile.roles];
    if (!identityAllowed(profile, input.identity)) {
      throw new PosternError("csr-forbidden-name", `profile ${profile.name} does not allow the identity ${shown(input.identity)} (allowed: ${profile.allowedIdentityPatterns.join(", ")})`);
    }
    if (!rolesAllowed(profile, roles)) {
      throw new PosternError("csr-forbidden-name", `profile ${profile.name} does not allow the role(s) ${shown(roles.filter((r) => !profile.roles.includes(r)).join(", "))} (allowed: ${profile.roles.join(", ")})`);
    }
    this.o.trust.assertIntact();
    const token = `pt_${randomBytes(32).toString("base64url")}`;
    const now = this.o.now();
    const expiresAtMs = now + input.ttlSeconds * 1000;
    await this.o.store.putToken({ tokenHash: hashToken(token), identity: input.identity, roles, profile: profile.name, expiresAtMs, createdAtMs: now });
    await this.o.audit.append({ actor: input.actor, action: "token.create", subject: input.identity, details: { roles, profile: profile.name, expiresAtMs } });
    return { token, expiresAt: new Date(expiresAtMs).toISOString() };
  }

  /**
   * Token enrollment: the key stays on the client. Only a certificate issued spends the token;
   * a refused attempt (bad CSR, other identity, weak key) is counted, and the token is deleted
   * at the `maxTokenFailures`-th. Two enrollments racing with one token: one wins. `profile`,
   * when given (an EST label), must be the token's profile (`forbidden` otherwise, counted).
   * `serverKeygen`: the CA makes the key (see `#serverKey`), and the answer carries it.
   */
  async enroll(input: { token: string; csrPem: string; profile?: string; via?: Channel; serverKeygen?: boolean }): Promise<EnrolledResult> {
    if (!TOKEN_PATTERN.test(input.token)) throw new PosternError("token-invalid");
    const hash = hashToken(input.token);
    const record = await this.o.store.peekToken(hash, this.o.now());
    if (!record) throw new PosternError("token-invalid");
    this.o.trust.assertIntact();
    const actor = `token:${record.identity}`;
    const via = { ...(input.via ? { via: input.via } : {}), ...(input.serverKeygen ? { serverKeygen: true } : {}) };
    let issued: IssuedCertificate;
    let key: ServerKey | undefined;
    try {
      const profile = this.profile(record.profile);
      checkProfileLabel(input.profile, profile);
      const csr = parseCsr(input.csrPem);
      checkBoundIdentity(csr, record.identity);
      key = input.serverKeygen ? await this.#serverKey(profile, csr) : undefined;
      this.#refuseRevokedKey(keyHashOfSpki(key?.spki ?? csr.spki));
      issued = issueFromCsrNow({ ...this.issuing(), csrPem: input.csrPem, profile, identity: record.identity, roles: record.roles, spki: key?.spki });
    } catch (error) {
      const max = this.o.maxTokenFailures ?? 5;
      const failures = await this.o.store.failToken(hash, max);
      await this.o.audit.append({ actor, action: "certificate.enroll.refused", subject: record.identity, details: { code: codeOf(error), failures, tokenDeleted: failures >= max, ...via } });
      if (error instanceof PosternError && error.code !== "internal") {
        const left = max - failures;
        throw new PosternError(error.code, `${error.detail ?? error.message} (${left > 0 ? `the token survives ${left} more refused attempt(s)` : "the token is now deleted"})`, { cause: error });
      }
      throw error;
    }
    // Spent only now, and only once: a concurrent enrollment that won keeps its certificate.
    if (!(await this.o.store.consumeToken(hash, this.o.now()))) throw new PosternError("token-invalid");
    const result = await this.record(issued, record.profile ?? this.o.defaultProfile, actor, "certificate.enroll", "issued", via);
    return key ? { ...result, privateKeyPkcs8Der: key.pkcs8Der } : result;
  }

  /**
   * Enrollment authenticated by a valid certificate from this CA's inventory (EST simpleenroll
   * over mTLS): the CSR must name that certificate's identity or none, and the new certificate
   * gets its identity, roles and profile. Unknown, revoked (`certificate-revoked`) and expired
   * (`certificate-expired`, no grace period here) certificates are refused.
   */
  async enrollWithCertificate(input: { peerCertDer: Uint8Array; csrPem: string; profile?: string; via?: Channel; serverKeygen?: boolean }): Promise<EnrolledResult> {
    this.o.trust.assertIntact();
    const { current } = await this.#inventoryRecordOf(input.peerCertDer);
    if (this.o.now() > current.notAfterMs) throw new PosternError("certificate-expired", "an expired certificate may only renew");
    const profile = this.profile(current.profile);
    checkProfileLabel(input.profile, profile);
    const csr = parseCsr(input.csrPem);
    checkBoundIdentity(csr, current.identity);
    const key = input.serverKeygen ? await this.#serverKey(profile, csr) : undefined;
    this.#refuseRevokedKey(keyHashOfSpki(key?.spki ?? csr.spki));
    const issued = issueFromCsrNow({ ...this.issuing(), csrPem: input.csrPem, profile, identity: current.identity, roles: current.roles, spki: key?.spki });
    const result = await this.record(issued, profile.name, current.identity, "certificate.enroll", "issued", {
      authenticatedBy: current.serial,
      ...(input.via ? { via: input.via } : {}),
      ...(key ? { serverKeygen: true } : {}),
    });
    return key ? { ...result, privateKeyPkcs8Der: key.pkcs8Der } : result;
  }

  /**
   * Server-side key generation (EST serverkeygen), where the profile allows it (`forbidden`
   * otherwise). The CSR's key only says which kind to make: P-256, P-384, Ed25519, or RSA of
   * 2048, 3072 or 4096 bits, as the profile allows (`csr-weak-key` otherwise). RFC 7030 §4.4.1
   * has the server ignore the CSR's key and signature; Postern still wants the signature to
   * verify, which every CSR tool's output does.
   */
  async #serverKey(profile: CertificateProfile, csr: ParsedCsr): Promise<ServerKey> {
    if (!profile.serverKeygen) throw new PosternError("forbidden", `profile ${profile.name} does not allow server-side key generation (serverKeygen)`);
    const algorithm = keyAlgorithmOf(csr.publicKey);
    // Checked before generating: an RSA key can take a second to make.
    if (algorithm === undefined || !keyAllowed(profile, keyFamilyOf(algorithm))) {
      throw new PosternError("csr-weak-key", `server-side keys are P-256, P-384, Ed25519 or RSA of 2048, 3072 or 4096 bits, as profile ${profile.name} allows (${profile.allowedKeyTypes.join(", ")}): send a CSR of that kind`);
    }
    const pair = await generateKeyPair(algorithm);
    return {
      spki: new Uint8Array(pair.publicKey.export({ type: "spki", format: "der" })),
      pkcs8Der: new Uint8Array(pair.privateKey.export({ type: "pkcs8", format: "der" })),
    };
  }

  /**
   * An admin certifies a CSR; the identity defaults to the CSR's own name, the roles to its OU
   * values or, when it has none, to the profile's roles.
   */
  async issueFromCsr(input: { csrPem: string; identity?: string; roles?: string[]; profile?: string; lifetimeSeconds?: number; actor: Actor }): Promise<IssuedResult> {
    const profile = this.profile(input.profile);
    this.o.trust.assertIntact();
    const csr = parseCsr(input.csrPem);
    this.#refuseRevokedKey(keyHashOfSpki(csr.spki));
    const roles = input.roles ?? (csr.organizationalUnits.length === 0 ? [...profile.roles] : undefined);
    const issued = issueFromCsrNow({
      ...this.issuing(),
      csrPem: input.csrPem,
      profile,
      identity: input.identity,
      roles,
      lifetimeSeconds: input.lifetimeSeconds,
    });
    return this.record(issued, profile.name, input.actor, "certificate.issue", "issued");
  }

  /** Server-side key generation: the key and certificate in a password-protected PKCS#12 bundle. */
  async issuePkcs12(input: { identity: string; roles?: string[]; profile?: string; keyAlgorithm: KeyAlgorithm; password: string; lifetimeSeconds?: number; actor: Actor }): Promise<{ result: IssuedResult; pfx: Uint8Array }> {
    const profile = this.profile(input.profile);
    this.o.trust.assertIntact();
    const { pfx, certificate } = await issuePkcs12({
      ...this.issuing(),
      identity: input.identity,
      roles: input.roles ?? [...profile.roles],
      keyAlgorithm: input.keyAlgorithm,
      password: input.password,
      profile,
      lifetimeSeconds: lifetimeFor(profile, input.lifetimeSeconds),
    });
    const result = await this.record(certificate, profile.name, input.actor, "certificate.issue.pkcs12", "issued");
    return { result, pfx };
  }

  /**
   * Renews the caller's own certificate (same identity, roles and profile), with the same key
   * or, given a CSR, a new one. A revoked certificate never renews; an expired one only
   * within the configured grace period. A CSR must name the same identity or none
   * (`csr-forbidden-name`); `profile`, when given (an EST label), must be the certificate's.
   */
  async renew(input: { peerCertDer: Uint8Array; csrPem?: string; profile?: string; via?: Channel }): Promise<IssuedResult> {
    this.o.trust.assertIntact();
    const { peer, current } = await this.#inventoryRecordOf(input.peerCertDer);
    const graceEndsMs = current.notAfterMs + this.o.renewalGraceSeconds * 1000;
    if (this.o.now() > graceEndsMs) throw new PosternError("certificate-expired", "the certificate expired beyond the renewal grace period");
    const profile = this.profile(current.profile);
    checkProfileLabel(input.profile, profile);
    const actor = current.identity;
    let issued: IssuedCertificate;
    if (input.csrPem) {
      const csr = parseCsr(input.csrPem);
      checkBoundIdentity(csr, current.identity);
      this.#refuseRevokedKey(keyHashOfSpki(csr.spki));
      issued = issueFromCsrNow({ ...this.issuing(), csrPem: input.csrPem, profile, identity: current.identity, roles: current.roles });
    } else {
      this.#refuseRevokedKey(keyHashOfCertificate(peer.toString()));
      issued = issueLeafDer({
        ...this.issuing(),
        spki: new Uint8Array(peer.publicKey.export({ type: "spki", format: "der" })),
        identity: current.identity,
        roles: current.roles,
        lifetimeSeconds: profile.defaultLifetimeSeconds,
        usage: "client",
      });
    }
    return this.record(issued, profile.name, actor, "certificate.renew", "renewed", {
      previousSerial: current.serial,
      newKey: Boolean(input.csrPem),
      ...(input.via ? { via: input.via } : {}),
    });
  }

  /** The inventory's record of a presented certificate; refuses (`forbidden`) one it never issued, and a revoked one. */
  async #inventoryRecordOf(certDer: Uint8Array): Promise<{ peer: X509Certificate; current: CertificateRecord }> {
    const peer = new X509Certificate(certDer);
    const identity: ClientIdentity = identityFromCertificate(peer);
    const current = await this.o.store.getCertificate(identity.serial);
    if (!current || current.fingerprint !== identity.fingerprint) throw new PosternError("forbidden", "this certificate was not issued by this CA's inventory");
    if (current.status === "revoked") throw new PosternError("certificate-revoked", "a revoked certificate cannot renew or enroll");
    return { peer, current };
  }

  /**
   * Revokes one certificate by serial. Idempotent: the first reason and time stay. The
   * revocation reaches the trust ledger (with the key, never to be certified again) before
   * the store, so a crash between the two is completed at the next check, and a store that
   * loses it is caught. Still allowed while the state is lost: refusing more is always safe.
   */
  async revoke(input: { serial: string; reason: RevocationReason; actor: Actor }): Promise<CertificateRecord> {
    const serial = parseSerial(input.serial);
    const before = await this.o.store.getCertificate(serial);
    if (!before) throw new PosternError("not-found", "no certificate with this serial");
    if (before.profile !== undefined && CA_PROFILES.has(before.profile)) {
      throw new PosternError("forbidden", "a CA certificate is revoked in its issuer's CRL (the root's), not by this CA");
    }
    const atMs = this.o.now();
    if (before.status !== "revoked") await this.o.ledger.recordRevocation({ serial, reason: input.reason, revokedAtMs: atMs }, keyHashOfCertificate(before.pem));
    const after = await this.o.store.revoke(serial, input.reason, atMs);
    if (!after) throw new PosternError("not-found", "no certificate with this serial");
    if (before?.status !== "revoked") {
      this.o.metrics.certificateRevoked(input.reason);
      await this.o.audit.append({ actor: input.actor, action: "certificate.revoke", subject: serial, details: { reason: input.reason, identity: after.identity } });
    }
    return after;
  }

  /** Incident response: revokes every valid certificate of one identity. */
  async revokeIdentity(input: { identity: string; reason: RevocationReason; actor: Actor }): Promise<string[]> {
    const serials: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.o.store.listCertificates({ identity: input.identity, status: "valid", limit: 1000, ...(cursor ? { cursor } : {}) });
      serials.push(...page.items.filter((item) => item.profile === undefined || !CA_PROFILES.has(item.profile)).map((item) => item.serial));
      cursor = page.nextCursor;
    } while (cursor);
    for (const serial of serials) await this.revoke({ serial, reason: input.reason, actor: input.actor });
    await this.o.audit.append({ actor: input.actor, action: "identity.revoke", subject: input.identity, details: { reason: input.reason, count: serials.length } });
    return serials;
  }

  list(filter: CertificateFilter): Promise<CertificatePage> {
    return this.o.store.listCertificates(filter);
  }

  /** Answers an RFC 6960 request from the store's view of each serial. */
  ocsp(requestDer: Uint8Array): Promise<Uint8Array> {
    return respondOcsp({
      requestDer,
      issuer: this.o.material.issuer,
      nowMs: this.o.now(),
      validitySeconds: 3600,
      lookup: (serial) => this.ocspStatus(serial),
    });
  }

  /** What the OCSP responder answers for `serial` (lowercase hex as in the certificate). */
  async ocspStatus(serial: string): Promise<OcspCertStatus> {
    // The ledger first: a revocation the store lost is still a revocation.
    const known = this.o.ledger.state.revocations.get(serial);
    if (known) return { status: "revoked", revokedAtMs: known.revokedAtMs, reason: known.reason };
    const record = await this.o.store.getCertificate(serial);
    if (!record) return { status: "unknown" };
    if (record.status === "revoked") return { status: "revoked", revokedAtMs: record.revokedAtMs ?? 0, reason: record.revocationReason ?? "unspecified" };
    return { status: "good" };
  }

  /** The inventory's record of `serial`, or undefined. */
  certificate(serial: string): Promise<CertificateRecord | undefined> {
    return this.o.store.getCertificate(serial);
  }

  /** Refuses (`key-revoked`) a key whose certificate was revoked. */
  #refuseRevokedKey(keyHash: string): void {
    if (this.o.ledger.state.revokedKeys.has(keyHash)) {
      throw new PosternError("key-revoked", "a certificate for this key was revoked: make a new key");
    }
  }

  private issuing() {
    return { issuer: this.o.material.issuer, now: this.o.now, crlUrl: this.o.urls.crlUrl, ocspUrl: this.o.urls.ocspUrl };
  }

  private async record(
    issued: IssuedCertificate,
    profile: string,
    actor: Actor,
    action: string,
    kind: "issued" | "renewed",
    details: Record<string, unknown> = {},
  ): Promise<IssuedResult> {
    await this.o.store.putCertificate({
      serial: issued.serial,
      identity: issued.identity,
      roles: issued.roles,
      fingerprint: issued.fingerprint,
      notBeforeMs: issued.notBeforeMs,
      notAfterMs: issued.notAfterMs,
      issuedAtMs: this.o.now(),
      pem: issued.pem,
      status: "valid",
      profile,
    });
    // Then the ledger, before the certificate is handed out: a certificate anyone holds is one
    // the store is checked for. (Store first, so a store write that fails never leaves the
    // ledger expecting a certificate the store never had: that would read as lost state.)
    await this.o.ledger.recordCertificates([{ serial: issued.serial, fingerprint: issued.fingerprint }]);
    await this.o.audit.append({ actor, action, subject: issued.serial, details: { identity: issued.identity, roles: issued.roles, profile, notAfterMs: issued.notAfterMs, ...details } });
    this.o.metrics.certificateIssued(kind, issued.notAfterMs);
    return {
      serial: issued.serial,
      identity: issued.identity,
      roles: issued.roles,
      profile,
      notAfter: new Date(issued.notAfterMs).toISOString(),
      fingerprint: issued.fingerprint,
      certificate: issued.chainPem,
    };
  }
}

function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/**
 * Refuses a CSR that names another identity than the token's, saying which one the token is
 * for (the profile check would only say the CN differs).
 */
function checkBoundIdentity(csr: ParsedCsr, bound: string): void {
  const lastSegment = bound.split("/").filter((s) => s !== "").pop();
  const asked = csr.uris.find((u) => u !== bound) ?? csr.commonNames.find((cn) => cn !== bound && cn !== lastSegment);
  const uriOk = csr.uris.length === 0 || csr.uris.includes(bound);
  const cnOk = csr.commonNames.every((cn) => cn === bound || cn === lastSegment);
  if (!uriOk || !cnOk) {
    throw new PosternError("csr-forbidden-name", `this token is bound to ${bound}; the CSR asks for ${asked === undefined ? "another name" : shown(asked)}`);
  }
}

/** A key the CA made: its public half to certify, its private half for the client. */
interface ServerKey {
  spki: Uint8Array;
  pkcs8Der: Uint8Array;
}

/** An EST label names the profile to enroll under; it must be the one the credential is bound to. */
function checkProfileLabel(label: string | undefined, profile: CertificateProfile): void {
  if (label !== undefined && label !== profile.name) {
    throw new PosternError("forbidden", `this credential enrolls under profile ${profile.name}, not ${shown(label)}`);
  }
}

/** Client input quoted in an error: printable, and at most 100 characters. */
function shown(text: string): string {
  const clean = text.replace(/[\u0000-\u001f\u007f]/g, "?");
  return clean.length > 100 ? `${clean.slice(0, 100)}…` : clean;
}

function codeOf(error: unknown): string {
  return error instanceof PosternError ? error.code : "internal";
}
