/** The public surface of src/tls/: everything outside it imports from here. */
export { type HandshakeFacts, type Peer, admitPeer, peerExpiresAtMs } from "./admission.js";
export { caChainVerifier } from "./ca-chain.js";
export { ConnectionCaps } from "./connection-caps.js";
export { clientErrorReason } from "./handshake.js";
export { trustedSources } from "./proxy-protocol.js";
export { ConnectionGate } from "./connection-gate.js";
export { handshakeFacts } from "./handshake-facts.js";
export { SERVER_TLS_OPTIONS, alpnOptions } from "./server-options.js";
export { type TlsReloadOutcome, type TlsReloadTrigger, TlsReloader, type TlsReloaderOptions } from "./tls-reloader.js";
