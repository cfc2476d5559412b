import { PosternError } from "../errors.js";
import type { RouteConfig } from "../config/index.js";

export interface RouteMatch {
  route: RouteConfig;
  params: Readonly<Record<string, string>>;
}

interface CompiledRoute {
  route: RouteConfig;
  segments: readonly string[];
}

/** Matches method + path against the configured routes, first match wins. */
export class RouteTable {
  private readonly compiled: readonly CompiledRoute[];

  constructor(routes: readonly RouteConfig[]) {
    this.compiled = routes.map((route) => ({ route, segments: route.path.split("/") }));
  }

  /** @throws PosternError not-found (no route has this path) or method-not-allowed. */
  find(method: string, path: string): RouteMatch {
    const segments = path.split("/");
    let pathMatched = false;
    for (const { route, segments: pattern } of this.compiled) {
      const params = matchSegments(pattern, segments);
      if (!params) continue;
      if (route.method === method) return { route, params };
      pathMatched = true;
    }
    if (pathMatched) throw new PosternError("method-not-allowed", `${method} is not allowed on this path`);
    throw new PosternError("not-found", "no route for this path");
  }
}

/** Matches path segments against a pattern's (`:name` = one non-empty segment); the params, or undefined. */
export function matchSegments(pattern: readonly string[], segments: readonly string[]): Record<string, string> | undefined {
  if (pattern.length !== segments.length) return undefined;
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
