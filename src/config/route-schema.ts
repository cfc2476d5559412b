import { z } from "zod";
import { nonEmptyName } from "./schema-common.js";

/** Routes: which requests go to which backend, who may send them, and their limits. */
const routePath = z
  .string()
  .regex(/^\/[A-Za-z0-9._~:\/-]*$/, "must start with / and hold only path characters and :params");

const bucketLimit = {
  requestsPerSecond: z.number().positive().max(1_000_000),
  burst: z.number().int().positive().max(10_000_000),
};

/** Per-identity token bucket of a route, shared across replicas through Redis. */
export const rateLimitSchema = z.strictObject({
  ...bucketLimit,
  /** First match wins: identities (`*` = one segment, `**` = any) or roles that get other limits. */
  overrides: z
    .array(
      z.strictObject({
        identities: z.array(z.string().min(1)).default([]),
        roles: z.array(z.string().min(1)).default([]),
        ...bucketLimit,
      }),
    )
    .default([]),
});

export const routeSchema = z.strictObject({
  name: nonEmptyName,
  method: z.enum(["POST", "PUT", "PATCH", "DELETE", "GET"]).default("POST"),
  /** Path pattern; `:name` matches one segment. */
  path: routePath,
  backend: nonEmptyName,
  allow: z
    .strictObject({
      /** Identity patterns (SAN URI or CN) allowed: `*` matches one segment, `**` any. */
      identities: z.array(z.string().min(1)).default([]),
      /** Roles (certificate OU) allowed. */
      roles: z.array(z.string().min(1)).default([]),
    })
    .prefault({}),
  maxBodyBytes: z.number().int().positive().max(64 * 1024 * 1024).default(1024 * 1024),
  contentTypes: z.array(z.string().min(1)).min(1).default(["application/json"]),
  /**
   * Sealed (end-to-end encrypted) bodies, `application/jose`: `required` refuses any other body
   * (sealed-required), `allowed` takes both, `forbidden` (default) treats application/jose as
   * any other content type. Sealed routes need `backends.<backend>.sealing`.
   */
  sealed: z.enum(["required", "allowed", "forbidden"]).default("forbidden"),
  /** Absent: no rate limit on this route. */
  rateLimit: rateLimitSchema.optional(),
  /** This route's signature policy, over the global `signature` section. */
  signature: z
    .strictObject({
      maxAgeSeconds: z.number().int().positive().max(86_400).optional(),
      clockSkewSeconds: z.number().int().min(0).max(600).optional(),
      /** Components clients must also cover on this route (the profile's are always required). */
      additionalComponents: z
        .array(z.string().regex(/^(@(method|target-uri|authority|scheme|request-target|path|query)|[a-z0-9!#$%&'*+.^_`|~-]+)$/, "must be a derived component or a lowercase field name"))
        .default([]),
    })
    .optional(),
});
