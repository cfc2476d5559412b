import { constants } from "node:crypto";

/**
 * TLS 1.2 suites Postern offers: ECDHE key exchange (forward secrecy) with an AEAD cipher only;
 * no CBC, CCM or ARIA. TLS 1.3 suites are all AEAD and keep Node's defaults.
 */
const TLS12_CIPHERS = [
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-RSA-CHACHA20-POLY1305",
];
const TLS13_CIPHERS = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"];

/**
 * Options every Postern TLS listener shares: AEAD-only suites in the server's order of
 * preference, and client-initiated renegotiation refused (OpenSSL's SSL_OP_NO_RENEGOTIATION;
 * Node alone would allow three per connection).
 */
export const SERVER_TLS_OPTIONS = {
  ciphers: [...TLS13_CIPHERS, ...TLS12_CIPHERS].join(":"),
  honorCipherOrder: true,
  secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
} as const;

/** Node versions whose TLS servers take `ALPNCallback` (20.16 and 22.4 on). */
export function hasAlpnCallback(version: string = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  return major > 22 || (major === 22 && minor >= 4) || (major === 20 && minor >= 16);
}

/**
 * ALPN for a listener offering `protocols` (in the server's order of preference): the first of
 * them that the client offers, or a fatal no_application_protocol alert when it offers none of
 * them (as Node does with `ALPNProtocols`). Chosen by a callback where Node has one: with
 * `ALPNProtocols` Node copies the list into a small Buffer for every connection, cut from its
 * shared 8 KB pool, and on a gateway whose requests draw on that pool too, each idle connection
 * kept a whole 8 KB slab alive (seen in a heap snapshot: one per connection).
 */
export function alpnOptions(protocols: readonly string[], callbacks = hasAlpnCallback()): { ALPNCallback: (offer: { protocols: string[] }) => string | undefined } | { ALPNProtocols: string[] } {
  if (!callbacks) return { ALPNProtocols: [...protocols] };
  return { ALPNCallback: ({ protocols: offered }) => protocols.find((p) => offered.includes(p)) };
}
