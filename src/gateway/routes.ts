import type { RouteConfig } from "../config/index.js";
import { PathRouter } from "./path-router.js";

export interface RouteMatch {
  route: RouteConfig;
  params: Readonly<Record<string, string>>;
}

/** Matches method + path against the configured routes, first match wins. */
export class RouteTable {
  private readonly router: PathRouter<RouteConfig>;

  constructor(routes: readonly RouteConfig[]) {
    this.router = new PathRouter(routes.map((route) => ({ method: route.method, path: route.path, value: route })));
  }

  /** @throws PosternError not-found (no route has this path) or method-not-allowed. */
  find(method: string, path: string): RouteMatch {
    const { value, params } = this.router.find(method, path);
    return { route: value, params };
  }
}
