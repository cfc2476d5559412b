/**
 * Header and URL rules of the HTTP backend: what may cross the gateway, in which direction.
 * Pure functions on plain values.
 */
import { isHopByHop } from "../config/index.js";
import type { ClientIdentity } from "../pki/index.js";

export type IdentityField = "id" | "roles" | "serial" | "fingerprint";

/** Field names a `Connection` header lists (they are hop-by-hop for this message only). */
export function connectionListed(connection: string | readonly string[] | undefined): Set<string> {
  const values = connection === undefined ? [] : typeof connection === "string" ? [connection] : connection;
  const names = new Set<string>();
  for (const value of values) {
    for (const token of value.split(",")) {
      const name = token.trim().toLowerCase();
      if (name !== "") names.add(name);
    }
  }
  return names;
}

/**
 * The upstream's response headers as passed back to the client: hop-by-hop fields, the ones
 * its Connection header lists, and Content-Length (the gateway sets its own) are dropped.
 * A field received on several lines is joined with ", " (RFC 9110 §5.3).
 */
export function filterResponseHeaders(
  headers: Readonly<Record<string, string | readonly string[] | undefined>>,
): Record<string, string> {
  const listed = connectionListed(headers["connection"]);
  const out: Record<string, string> = {};
  for (const [rawName, value] of Object.entries(headers)) {
    const name = rawName.toLowerCase();
    if (value === undefined || isHopByHop(name) || listed.has(name) || name === "content-length") continue;
    out[name] = typeof value === "string" ? value : value.join(", ");
  }
  return out;
}

/**
 * The configured identity headers with their values for `identity`. Values outside printable
 * ASCII are percent-encoded, so a certificate name can never inject a header line.
 */
export function identityHeaderValues(
  identity: ClientIdentity,
  mapping: Readonly<Record<string, IdentityField>>,
): Array<[string, string]> {
  return Object.entries(mapping).map(([name, field]) => [name.toLowerCase(), headerSafe(identityValue(identity, field))]);
}

function identityValue(identity: ClientIdentity, field: IdentityField): string {
  switch (field) {
    case "id":
      return identity.id;
    case "roles":
      return identity.roles.join(",");
    case "serial":
      return identity.serial;
    case "fingerprint":
      return identity.fingerprint;
  }
}

function headerSafe(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) ? value : encodeURIComponent(value);
}

/**
 * The upstream request target: the base URL's path as a prefix, then the request's path and
 * query. `http://h:1/in` + `/v1/x` + `?q` -> `/in/v1/x?q`; a trailing "/" on the base is not doubled.
 */
export function joinUpstreamPath(base: URL, path: string, query: string): { path: string; query: string } {
  const prefix = base.pathname.endsWith("/") ? base.pathname.slice(0, -1) : base.pathname;
  const suffix = path.startsWith("/") ? path : `/${path}`;
  return { path: `${prefix}${suffix}`, query };
}
