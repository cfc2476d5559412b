import type { TLSSocket } from "node:tls";
import { identityFromCertificate } from "../pki/index.js";
import type { HandshakeFacts } from "./admission.js";

/** What a completed handshake says about the peer, for `admitPeer` (a resumed session included). */
export function handshakeFacts(socket: TLSSocket): HandshakeFacts {
  const authorizationError = socket.authorizationError === undefined || socket.authorizationError === null ? undefined : String(socket.authorizationError);
  const certificate = socket.getPeerCertificate();
  if (!certificate || Object.keys(certificate).length === 0 || !certificate.raw) {
    return { authorized: socket.authorized, authorizationError, certificate: undefined };
  }
  let identity;
  try {
    identity = identityFromCertificate(certificate);
  } catch {
    identity = undefined; // neither SAN URI nor CN
  }
  return { authorized: socket.authorized, authorizationError, certificate: { der: certificate.raw, identity, notBeforeMs: Date.parse(certificate.valid_from) } };
}
