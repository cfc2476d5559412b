import type { HandshakeFailure } from "../metrics/index.js";
import type { ClientIdentity } from "../pki/index.js";

/** The verified peer of a connection: its identity and certificate DER. */
export interface Peer {
  identity: ClientIdentity;
  certDer: Buffer;
  /** Set when an expired certificate was let in for renewal within the grace period. */
  expired?: boolean;
}

/** What the TLS layer knows about a completed handshake (a resumed one included). */
export interface HandshakeFacts {
  /**
   * OpenSSL's verdict. On a resumed session it is the verdict of the full handshake the
   * session began with, so it says nothing about expiry since then.
   */
  authorized: boolean;
  authorizationError: string | undefined;
  /** The peer's leaf certificate; undefined when none was presented. `identity` is undefined when it names none. */
  certificate: { der: Buffer; identity: ClientIdentity | undefined; notBeforeMs: number } | undefined;
}

export interface AdmissionPolicy {
  nowMs: number;
  /** Serve a client that presents no certificate (the admin listener, for token enrollment). */
  anonymous: boolean;
  /** Seconds after notAfter that a certificate is still served, marked `expired` (renewal only); 0 = none. */
  expiredGraceSeconds: number;
  isRevoked(serial: string): boolean;
  /**
   * Whether the certificate's signature chains to Postern's CA. Consulted only where OpenSSL's
   * verdict does not prove it: OpenSSL reports CERT_HAS_EXPIRED (or NOT_YET_VALID) before,
   * and instead of, a bad signature, so a forged expired certificate with our issuer's name
   * would otherwise pass as merely expired.
   */
  chainsToCa(der: Buffer): boolean;
}

export type Admission = { admitted: true; peer: Peer | undefined } | { admitted: false; reason: HandshakeFailure };

const UNKNOWN_CA = new Set([
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
]);

/** Time errors: OpenSSL stops at these before it checks the signature. */
const TIME_ERRORS = new Set(["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID"]);

/**
 * Decides who is served, as a pure function of the handshake and the policy; the data and
 * admin listeners and `explain` all use it, so they cannot drift. Fails closed: anything it
 * cannot prove good is refused with the reason that goes into the handshake-failure metric.
 * Validity is checked here against `nowMs` on every connection, resumed ones included,
 * rather than trusted from OpenSSL's verdict.
 */
export function admitPeer(facts: HandshakeFacts, policy: AdmissionPolicy): Admission {
  const certificate = facts.certificate;
  if (!certificate) return policy.anonymous ? { admitted: true, peer: undefined } : refuse("no_cert");
  const error = facts.authorized ? undefined : (facts.authorizationError ?? "UNKNOWN");
  if (error !== undefined) {
    if (error === "CERT_REVOKED") return refuse("revoked");
    if (UNKNOWN_CA.has(error)) return refuse("unknown_ca");
    if (!TIME_ERRORS.has(error)) return refuse("other");
    if (!policy.chainsToCa(certificate.der)) return refuse("unknown_ca");
  }
  const { identity } = certificate;
  if (!identity) return refuse("other");
  if (policy.nowMs < certificate.notBeforeMs) return refuse("not_yet_valid");
  if (policy.isRevoked(identity.serial)) return refuse("revoked");
  const peer: Peer = { identity, certDer: certificate.der };
  if (policy.nowMs > identity.notAfterMs) {
    const graceEndsMs = identity.notAfterMs + policy.expiredGraceSeconds * 1000;
    if (policy.expiredGraceSeconds <= 0 || policy.nowMs > graceEndsMs) return refuse("expired");
    peer.expired = true;
  }
  return { admitted: true, peer };
}

/** When a connection of this peer must end: its certificate's notAfter, plus the grace it was let in with. */
export function peerExpiresAtMs(peer: Peer, expiredGraceSeconds: number): number {
  return peer.identity.notAfterMs + (peer.expired ? expiredGraceSeconds * 1000 : 0);
}

function refuse(reason: HandshakeFailure): Admission {
  return { admitted: false, reason };
}
