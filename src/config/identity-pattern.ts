const compiled = new Map<string, RegExp>();

/**
 * The one pattern syntax for identities and names everywhere in the configuration (route allow
 * lists, rate-limit overrides, issuance profiles): `*` matches within one segment, `**` across
 * segments; `separator` is what `*` cannot cross ("/" for identities and URIs, "." for DNS
 * names). Everything else matches itself.
 */
export function matchesGlob(pattern: string, value: string, separator: "/" | "." = "/"): boolean {
  const cacheKey = separator + pattern;
  let re = compiled.get(cacheKey);
  if (!re) {
    const sep = separator === "/" ? "/" : "\\.";
    const body = pattern
      .split("**")
      .map((part) => part.split("*").map(escapeRegExp).join(`[^${sep}]*`))
      .join(".*");
    re = new RegExp(`^${body}$`, "s");
    compiled.set(cacheKey, re);
  }
  return re.test(value);
}

/** An identity (SAN URI or CN) against a pattern: `spiffe://org/client/*` (one segment), `spiffe://org/**` (any). */
export function matchesIdentity(id: string, pattern: string): boolean {
  return matchesGlob(pattern, id, "/");
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
