import type { ComponentIdentifier } from "./component-identifier.js";
import type { MessageView } from "./message-view.js";
import { fail, ok, type Result } from "./result.js";

/** derived-component-value = *( VCHAR / SP ), RFC 9421 §2.5. */
const DERIVED_TEXT = /^[\x20-\x7e]*$/;
const DEFAULT_PORT = { http: ":80", https: ":443" } as const;

/** RFC 9110 §4.2.3 normalisation that RFC 9421 §2.2.3 asks for: lowercase, no default port. */
export function normalizeAuthority(authority: string, scheme: "http" | "https"): string {
  let value = authority.trim().toLowerCase();
  const port = DEFAULT_PORT[scheme];
  if (value.endsWith(port)) value = value.slice(0, -port.length);
  else if (value.endsWith(":")) value = value.slice(0, -1);
  return value;
}

function normalizedQuery(query: string): string {
  if (query === "") return "?";
  return query.startsWith("?") ? query : `?${query}`;
}

/**
 * WHATWG "percent-encode after encoding" with the application/x-www-form-urlencoded set,
 * space as %20 (RFC 9421 §2.2.8): keeps ASCII alphanumerics and `*-._`, encodes the rest.
 */
function formEncode(text: string): string {
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    const isKept =
      (byte >= 0x30 && byte <= 0x39) ||
      (byte >= 0x41 && byte <= 0x5a) ||
      (byte >= 0x61 && byte <= 0x7a) ||
      byte === 0x2a ||
      byte === 0x2d ||
      byte === 0x2e ||
      byte === 0x5f;
    out += isKept ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

function queryParamValues(query: string, encodedName: string): string[] {
  const values: string[] = [];
  // URLSearchParams is the WHATWG form-urlencoded parser the RFC names.
  for (const [name, value] of new URLSearchParams(query.startsWith("?") ? query.slice(1) : query)) {
    if (formEncode(name) === encodedName) values.push(formEncode(value));
  }
  return values;
}

/**
 * Value(s) of a derived component (RFC 9421 §2.2) in `view`: one entry per base line
 * (several only for a repeated @query-param). A component the message does not have is
 * "signature-invalid"; a value that is not visible ASCII is "bad-request".
 */
export function resolveDerivedValues(view: MessageView, id: ComponentIdentifier): Result<string[]> {
  const { parts } = view;
  let values: string[];
  if (id.name === "@status") {
    if (!view.isResponse) return fail("bad-request", "@status is not part of a request");
    const { status } = parts;
    if (status === undefined || !Number.isInteger(status) || status < 100 || status > 999) {
      return fail("bad-request", "the response has no three-digit status");
    }
    values = [String(status)];
  } else {
    if (view.isResponse) return fail("signature-invalid", `${id.name} is not part of a response`);
    const path = parts.path === "" ? "/" : parts.path;
    switch (id.name) {
      case "@scheme":
        values = [parts.scheme];
        break;
      case "@authority":
        values = [normalizeAuthority(parts.authority, parts.scheme)];
        break;
      case "@method":
        values = [parts.method];
        break;
      case "@target-uri":
        values = [`${parts.scheme}://${normalizeAuthority(parts.authority, parts.scheme)}${path}${parts.query}`];
        break;
      case "@request-target":
        values = [parts.path + parts.query];
        break;
      case "@path":
        values = [path];
        break;
      case "@query":
        values = [normalizedQuery(parts.query)];
        break;
      case "@query-param":
        values = queryParamValues(parts.query, id.queryName ?? "");
        if (values.length === 0) return fail("signature-invalid", "a covered query parameter is absent");
        break;
      default:
        return fail("bad-request", "unknown derived component");
    }
  }
  for (const value of values) {
    if (!DERIVED_TEXT.test(value)) return fail("bad-request", `${id.name} holds non-ASCII or control characters`);
  }
  return ok(values);
}
