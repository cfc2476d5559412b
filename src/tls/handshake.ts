import type { HandshakeFailure } from "../metrics/index.js";

/** Reason label for a handshake that failed before completing (`tlsClientError`). */
export function clientErrorReason(error: NodeJS.ErrnoException): HandshakeFailure {
  if (error.code === "ERR_TLS_HANDSHAKE_TIMEOUT") return "timeout";
  return "protocol";
}
