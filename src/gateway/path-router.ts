import { PosternError } from "../errors.js";

/** One entry of a router: a method, a path pattern (`:name` = one non-empty segment; a last `*` = any rest), and what it routes to. */
export interface RouteEntry<T> {
  method: string;
  path: string;
  value: T;
}

export interface PathMatch<T> {
  value: T;
  /** `:name` segments by name (percent-decoded when the router decodes), `*` as "*". */
  params: Readonly<Record<string, string>>;
}

interface Compiled<T> {
  entry: RouteEntry<T>;
  segments: readonly string[];
  rest: boolean;
}

/**
 * The one path matcher of Postern's three listeners (data routes, admin endpoints, public
 * documents): first match wins; a path that exists for other methods is "method not allowed",
 * naming them, rather than "not found".
 */
export class PathRouter<T> {
  private readonly compiled: ReadonlyArray<Compiled<T>>;

  constructor(
    entries: ReadonlyArray<RouteEntry<T>>,
    private readonly options: { decode?: boolean } = {},
  ) {
    this.compiled = entries.map((entry) => {
      const segments = entry.path.split("/");
      const rest = segments.at(-1) === "*";
      return { entry, segments: rest ? segments.slice(0, -1) : segments, rest };
    });
  }

  /** @throws PosternError not-found, method-not-allowed (with the allowed methods), or bad-request (bad percent-encoding). */
  find(method: string, path: string): PathMatch<T> {
    const segments = path.split("/");
    const allowed = new Set<string>();
    for (const { entry, segments: pattern, rest } of this.compiled) {
      const params = matchSegments(pattern, rest ? segments.slice(0, pattern.length) : segments, rest ? segments.length > pattern.length : true);
      if (!params) continue;
      if (entry.method === method) return { value: entry.value, params: this.options.decode ? decoded(params) : params };
      allowed.add(entry.method);
    }
    if (allowed.size > 0) {
      throw new PosternError("method-not-allowed", `use ${[...allowed].join(" or ")}`, { extensions: { allow: [...allowed] } });
    }
    throw new PosternError("not-found", "nothing here");
  }
}

/** Matches path segments against a pattern's; the `:name` params, or undefined. */
function matchSegments(pattern: readonly string[], segments: readonly string[], lengthOk: boolean): Record<string, string> | undefined {
  if (!lengthOk || pattern.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const want = pattern[i]!;
    const got = segments[i]!;
    if (want.startsWith(":")) {
      if (got === "") return undefined;
      params[want.slice(1)] = got;
    } else if (want !== got) {
      return undefined;
    }
  }
  return params;
}

function decoded(params: Record<string, string>): Record<string, string> {
  try {
    return Object.fromEntries(Object.entries(params).map(([name, value]) => [name, decodeURIComponent(value)]));
  } catch {
    throw new PosternError("bad-request", "a path segment is not valid percent-encoding");
  }
}
