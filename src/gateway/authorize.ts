import { matchesIdentity, type RouteConfig } from "../config/index.js";
import type { ClientIdentity } from "../pki/index.js";

/**
 * Whether `identity` may use a route: its id matches a listed pattern (`*` one segment, `**` any) or
 * one of its roles is. Fails closed: a route that lists nobody admits nobody.
 */
export function isAuthorized(identity: ClientIdentity, allow: RouteConfig["allow"]): boolean {
  if (allow.roles.some((role) => identity.roles.includes(role))) return true;
  return allow.identities.some((pattern) => matchesIdentity(identity.id, pattern));
}
