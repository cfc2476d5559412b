import type { TLSSocket } from "node:tls";
import type { HandshakeFailure } from "../metrics/recorder.js";

const UNKNOWN_CA = new Set([
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
]);

/**
 * Why a completed handshake must not be served, or undefined when the peer presented a
 * certificate that chains to Postern's CA. The server runs with `rejectUnauthorized: false`
 * only so that it can name the reason; every refusal here ends in `socket.destroy()`.
 */
export function handshakeRefusal(socket: TLSSocket): HandshakeFailure | undefined {
  if (socket.authorized) return undefined;
  const code = String(socket.authorizationError ?? "");
  const peer = socket.getPeerCertificate();
  if (!peer || Object.keys(peer).length === 0) return "no_cert";
  if (code === "CERT_HAS_EXPIRED") return "expired";
  if (code === "CERT_NOT_YET_VALID") return "not_yet_valid";
  if (code === "CERT_REVOKED") return "revoked";
  if (UNKNOWN_CA.has(code)) return "unknown_ca";
  return "other";
}

/** Reason label for a handshake that failed before completing (`tlsClientError`). */
export function clientErrorReason(error: NodeJS.ErrnoException): HandshakeFailure {
  if (error.code === "ERR_TLS_HANDSHAKE_TIMEOUT") return "timeout";
  return "protocol";
}
