import { createHash } from "node:crypto";
import { type RateLimitConfig, matchesIdentity } from "../config/index.js";
import type { ClientIdentity } from "../pki/index.js";
import type { BucketLimit } from "./memory-limiter.js";

/** The bucket an identity draws from on a route: the first matching override, else the route's. */
export function limitFor(identity: ClientIdentity, config: RateLimitConfig): BucketLimit {
  const override = config.overrides.find(
    (o) => o.roles.some((role) => identity.roles.includes(role)) || o.identities.some((p) => matchesIdentity(identity.id, p)),
  );
  const chosen = override ?? config;
  return { ratePerSecond: chosen.requestsPerSecond, burst: chosen.burst };
}

/** Bucket key: one per route and identity (a renewed certificate keeps its identity's bucket). */
export function bucketKey(route: string, identity: ClientIdentity): string {
  return `rl:{${route}}:${createHash("sha256").update(identity.id).digest("base64url").slice(0, 22)}`;
}
