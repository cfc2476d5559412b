import { ConfigError } from "../config/index.js";
import { PosternError } from "../errors.js";

/** What a resolved stream name may hold: it becomes part of a Redis key or a file name. */
const STREAM_NAME = /^[A-Za-z0-9._-]{1,128}$/;
const PLACEHOLDER = /\{(route|param\.([^{}]+))\}/g;

type Part = { kind: "literal"; text: string } | { kind: "route" } | { kind: "param"; name: string };

/** A compiled `stream` setting: a fixed name, or a template with `{route}` and `{param.<name>}`. */
export interface StreamNameTemplate {
  readonly template: string;
  /** The name when the template has no placeholder. */
  readonly fixedName: string | undefined;
  /** Path parameters the template reads; each route using the backend must have them. */
  readonly paramNames: readonly string[];
  /**
   * The stream name for one message. Fails closed: a value that would put anything but
   * [A-Za-z0-9._-] (or more than 128 characters) into the name is refused.
   * @throws PosternError bad-request for such a value; internal when the route lacks a parameter.
   */
  resolve(route: string, params: Readonly<Record<string, string>>): string;
}

/** Parses a `backends.<name>.stream` value. @throws ConfigError when it is not a valid template. */
export function compileStreamTemplate(template: string): StreamNameTemplate {
  const parts: Part[] = [];
  let at = 0;
  for (const match of template.matchAll(PLACEHOLDER)) {
    if (match.index > at) parts.push({ kind: "literal", text: template.slice(at, match.index) });
    parts.push(match[2] === undefined ? { kind: "route" } : { kind: "param", name: match[2] });
    at = match.index + match[0].length;
  }
  if (at < template.length) parts.push({ kind: "literal", text: template.slice(at) });
  for (const part of parts) {
    if (part.kind === "literal" && !/^[A-Za-z0-9._-]+$/.test(part.text)) {
      throw new ConfigError(`stream "${template}": only [A-Za-z0-9._-], {route} and {param.<name>} are allowed`);
    }
  }
  const paramNames = [...new Set(parts.flatMap((p) => (p.kind === "param" ? [p.name] : [])))];
  const fixed = parts.every((p) => p.kind === "literal");
  if (fixed && !STREAM_NAME.test(template)) throw new ConfigError(`stream "${template}" is not a valid stream name`);
  return {
    template,
    fixedName: fixed ? template : undefined,
    paramNames,
    resolve(route, params) {
      if (fixed) return template;
      const name = parts
        .map((part) => {
          if (part.kind === "literal") return part.text;
          if (part.kind === "route") return route;
          const value = params[part.name];
          if (value === undefined) throw new PosternError("internal", `the route has no path parameter ${part.name}`);
          if (!STREAM_NAME.test(value)) {
            throw new PosternError("bad-request", `path parameter ${part.name} may hold only [A-Za-z0-9._-], at most 128`);
          }
          return value;
        })
        .join("");
      if (!STREAM_NAME.test(name)) throw new PosternError("bad-request", "the resolved stream name is longer than 128 characters");
      return name;
    },
  };
}

/** The `:name` parameters of a route path pattern. */
export function routeParamNames(path: string): string[] {
  return path
    .split("/")
    .filter((segment) => segment.startsWith(":"))
    .map((segment) => segment.slice(1));
}
