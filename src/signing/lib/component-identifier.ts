import { parseItem, serializeString, type InnerList, type Item, type Parameters } from "structured-headers";
import { excerpt, fail, ok, type Result } from "./result.js";
import { serializeItem, serializeParameters } from "./serialize.js";

/** One covered component (RFC 9421 §2): a name plus its ordered parameters. */
export interface ComponentIdentifier {
  /** "@method", "content-digest", ... */
  readonly name: string;
  readonly params: Parameters;
  /** As in a base line and in Signature-Input: '"@query-param";name="Pet"'. */
  readonly serialized: string;
  /** As in options and results: '@query-param;name="Pet"'. */
  readonly display: string;
  readonly req: boolean;
  readonly sf: boolean;
  readonly bs: boolean;
  readonly tr: boolean;
  /** `;key="x"`: a Dictionary member. */
  readonly key: string | undefined;
  /** `;name="x"` of @query-param. */
  readonly queryName: string | undefined;
}

export const DERIVED_COMPONENTS: ReadonlySet<string> = new Set([
  "@method",
  "@target-uri",
  "@authority",
  "@scheme",
  "@request-target",
  "@path",
  "@query",
  "@query-param",
  "@status",
]);

/** RFC 9110 token, lowercase only (RFC 9421 §2.1: field component names are lowercased). */
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const FLAGS = new Set(["req", "sf", "bs", "tr"]);

/**
 * Validate one member of a covered-components Inner List. Unknown derived names, unknown
 * or ill-typed parameters and incompatible combinations are errors (RFC 9421 §2.5).
 */
export function componentFromItem(item: Item | InnerList): Result<ComponentIdentifier> {
  const [name, params] = item;
  if (typeof name !== "string") return fail("bad-request", "a covered component is not a String");
  if (name === "@signature-params") return fail("bad-request", "@signature-params cannot be covered");
  const derived = name.startsWith("@");
  if (derived ? !DERIVED_COMPONENTS.has(name) : !FIELD_NAME.test(name)) {
    return fail("bad-request", `unknown or invalid component name ${excerpt(name)}`);
  }
  let key: string | undefined;
  let queryName: string | undefined;
  for (const [param, value] of params) {
    if (FLAGS.has(param)) {
      if (value !== true) return fail("bad-request", `component parameter ;${param} must be a bare flag`);
      if (derived && param !== "req") return fail("bad-request", `;${param} does not apply to ${name}`);
    } else if (param === "key" && !derived) {
      if (typeof value !== "string") return fail("bad-request", ";key must be a String");
      key = value;
    } else if (param === "name" && name === "@query-param") {
      if (typeof value !== "string") return fail("bad-request", ";name must be a String");
      queryName = value;
    } else {
      return fail("bad-request", `unknown component parameter ${excerpt(param)} on ${name}`);
    }
  }
  if (name === "@query-param" && queryName === undefined) {
    return fail("bad-request", "@query-param needs a ;name");
  }
  const bs = params.get("bs") === true;
  const sf = params.get("sf") === true;
  if (bs && (sf || key !== undefined)) return fail("bad-request", ";bs cannot be combined with ;sf or ;key");
  let serialized: string;
  let display: string;
  try {
    const paramText = serializeParameters(params);
    serialized = serializeItem([name, params]);
    display = name + paramText;
  } catch {
    return fail("bad-request", `component ${excerpt(name)} cannot be serialized`);
  }
  return ok({
    name,
    params,
    serialized,
    display,
    req: params.get("req") === true,
    sf,
    bs,
    tr: params.get("tr") === true,
    key,
    queryName,
  });
}

/**
 * Read a component identifier written as in options: `@method`, `content-type;req`,
 * `@query-param;name="Pet"`, or already serialized (`"example-dict";key="a"`). A field name
 * is lowercased first (field names are case-insensitive).
 */
export function componentFromString(text: string): Result<ComponentIdentifier> {
  const trimmed = text.trim();
  let source: string;
  if (trimmed.startsWith('"')) {
    source = trimmed;
  } else {
    const semicolon = trimmed.indexOf(";");
    const rawName = semicolon < 0 ? trimmed : trimmed.slice(0, semicolon);
    const name = rawName.startsWith("@") ? rawName : rawName.toLowerCase();
    try {
      source = serializeString(name) + (semicolon < 0 ? "" : trimmed.slice(semicolon));
    } catch {
      return fail("bad-request", `invalid component identifier ${excerpt(text)}`);
    }
  }
  let item: Item;
  try {
    item = parseItem(source);
  } catch {
    return fail("bad-request", `invalid component identifier ${excerpt(text)}`);
  }
  if (typeof item[0] === "string" && !item[0].startsWith("@") && item[0] !== item[0].toLowerCase()) {
    item = [item[0].toLowerCase(), item[1]];
  }
  return componentFromItem(item);
}
