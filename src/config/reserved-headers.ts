/** Hop-by-hop fields (RFC 9110 §7.6.1, plus Host and Proxy-*): never passed through either way. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "host"]);

/** Fields the gateway itself sets on a forwarded request; identity headers may not reuse them. */
export const GATEWAY_REQUEST_FIELDS: ReadonlySet<string> = new Set([
  "content-type",
  "content-length",
  "content-digest",
  "client-cert",
  "signature",
  "signature-input",
  "x-postern-message-id",
]);

/** True for a hop-by-hop field name (any case), including every `Proxy-*` field. */
export function isHopByHop(name: string): boolean {
  const lower = name.toLowerCase();
  return HOP_BY_HOP.has(lower) || lower.startsWith("proxy-");
}

/**
 * Identity header names that must be refused: hop-by-hop fields and fields the gateway sets
 * itself (a config naming them could smuggle framing or override the signature).
 */
export function forbiddenIdentityHeaders(names: Iterable<string>): string[] {
  return [...names].filter((name) => isHopByHop(name) || GATEWAY_REQUEST_FIELDS.has(name.toLowerCase()));
}
