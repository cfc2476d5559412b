import type { TLSSocket } from "node:tls";
import { identityFromCertificate, type ClientIdentity } from "../pki/index.js";
import type { HandshakeFacts } from "./admission.js";

type PresentedCertificate = NonNullable<HandshakeFacts["certificate"]>;

/**
 * What each certificate seen lately says, by its SHA-256 (as OpenSSL's fingerprint256 prints
 * it): a client reconnecting, or resuming a session, costs a map look-up instead of deriving
 * its identity again (~50 us a handshake). Only what the DER alone decides is kept; OpenSSL's
 * verdict, revocation and validity against the clock are judged on every connection. Bounded:
 * past the limit the oldest entry goes, so a flood of made-up certificates costs memory for
 * at most this many.
 */
const seen = new Map<string, PresentedCertificate>();
const MAX_SEEN = 10_000;

/** What a completed handshake says about the peer, for `admitPeer` (a resumed session included). */
export function handshakeFacts(socket: TLSSocket): HandshakeFacts {
  const authorizationError = socket.authorizationError === undefined || socket.authorizationError === null ? undefined : String(socket.authorizationError);
  const certificate = socket.getPeerCertificate();
  if (!certificate || Object.keys(certificate).length === 0 || !certificate.raw) {
    return { authorized: socket.authorized, authorizationError, certificate: undefined };
  }
  const key = certificate.fingerprint256;
  let presented = seen.get(key);
  if (presented === undefined) {
    presented = { der: certificate.raw, identity: identityOf(certificate), notBeforeMs: Date.parse(certificate.valid_from) };
    if (seen.size >= MAX_SEEN) seen.delete(seen.keys().next().value!);
    seen.set(key, presented);
  }
  return { authorized: socket.authorized, authorizationError, certificate: presented };
}

/** The identity, frozen (connections share it); undefined when the certificate names none (neither SAN URI nor CN). */
function identityOf(certificate: Parameters<typeof identityFromCertificate>[0]): ClientIdentity | undefined {
  try {
    const identity = identityFromCertificate(certificate);
    Object.freeze(identity.roles);
    return Object.freeze(identity);
  } catch {
    return undefined;
  }
}
