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
