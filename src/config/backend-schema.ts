import { z } from "zod";
import { nonEmptyName } from "./schema-common.js";

/** The backends a route hands messages to: Redis Streams (or embedded files) and HTTP services. */
/**
 * A stream name, or a template of one: literal [A-Za-z0-9._-] and the placeholders `{route}`
 * (the route's name) and `{param.<name>}` (a path parameter of the route, `:name`).
 */
const streamTemplate = z
  .string()
  .max(128)
  .regex(
    /^(?:[A-Za-z0-9._-]|\{route\}|\{param\.[A-Za-z0-9._~-]+\})+$/,
    "must be [A-Za-z0-9._-] with optional {route} and {param.<name>} placeholders",
  );

/**
 * Sealed payloads to this backend (routes with `sealed: required | allowed`): its public
 * encryption keys, which the gateway checks each sealed body's header against and publishes at
 * /.well-known/postern-backend-keys/<backend>. Never its private keys: those stay with the
 * consumer (`postern keys backend create` writes them there).
 */
const sealing = z
  .strictObject({
    /** The backend key ring's public `jwks.json` (copied from the consumer's side); re-read on SIGHUP and every minute. */
    publicKeys: z.string().min(1),
    /** Key management algorithms a sealed body may use (always with A256GCM). */
    algorithms: z.array(z.enum(["ECDH-ES+A256KW", "ECDH-ES"])).min(1).default(["ECDH-ES+A256KW", "ECDH-ES"]),
  })
  .optional();

const trimApproximate = {
  /** `~`: Redis trims whole radix-tree nodes (cheap, may keep ~100 entries more); false = exact. */
  approximate: z.boolean().default(true),
};

/** How a stream is trimmed at each XADD (Redis mode). */
const streamTrim = z.discriminatedUnion("strategy", [
  z.strictObject({ strategy: z.literal("maxlen"), maxLength: z.number().int().positive(), ...trimApproximate }),
  /** MINID = Redis time now - maxAgeSeconds: entries older than that are dropped. */
  z.strictObject({ strategy: z.literal("minid"), maxAgeSeconds: z.number().int().positive().max(365 * 86_400), ...trimApproximate }),
  z.strictObject({ strategy: z.literal("none") }),
]);

const streamBackend = z
  .strictObject({
    type: z.literal("stream"),
    sealing,
    /**
     * Redis Stream key suffix, or a template of one (`orders-{param.topic}`); the full key is
     * <redis.keyPrefix>{<backend name>}:<stream>, so every stream of a backend shares its nonces' slot.
     */
    stream: streamTemplate.default("messages"),
    /**
     * Distinct stream names a templated `stream` may create, in both modes: a message that would
     * start one more gets 422 stream-limit, while existing names keep working. Clients choose the
     * names (path parameters), so this bounds what one of them can make Postern create.
     */
    maxStreams: z.number().int().positive().max(100_000).default(256),
    /** Trimming at each append; default about the newest 1,000,000 entries. */
    trim: streamTrim.default({ strategy: "maxlen", maxLength: 1_000_000, approximate: true }),
    /** A consumer group created at startup (fixed names) or with a stream's first entry (`XGROUP CREATE ... $ MKSTREAM`). */
    consumerGroup: nonEmptyName.optional(),
    /** Refuse new messages (503 backend-unavailable + Retry-After) instead of growing Redis without bound. */
    backpressure: z
      .strictObject({
        /** Refuse while XLEN of the message's stream is at least this. */
        maxBacklog: z.number().int().positive().optional(),
        /** Refuse while `consumerGroup`'s lag (entries not yet delivered to it) is at least this. */
        maxGroupLag: z.number().int().positive().optional(),
        retryAfterSeconds: z.number().int().positive().max(3600).default(5),
      })
      .optional(),
  })
  .superRefine((backend, ctx) => {
    const bp = backend.backpressure;
    if (bp && bp.maxBacklog === undefined && bp.maxGroupLag === undefined) {
      ctx.addIssue({ code: "custom", path: ["backpressure"], message: "needs maxBacklog or maxGroupLag" });
    }
    if (bp?.maxGroupLag !== undefined && backend.consumerGroup === undefined) {
      ctx.addIssue({ code: "custom", path: ["backpressure", "maxGroupLag"], message: "needs consumerGroup" });
    }
  });

const httpBackend = z.strictObject({
  type: z.literal("http"),
  sealing,
  /** Base URL of the upstream; the request's path and query are appended to its path. */
  url: z.url({ protocol: /^https?$/ }),
  connectTimeoutSeconds: z.number().positive().max(60).default(2),
  /** Time until the upstream's response headers arrive. */
  headersTimeoutSeconds: z.number().positive().max(300).default(10),
  /** Time between body chunks of the upstream's response. */
  bodyTimeoutSeconds: z.number().positive().max(300).default(10),
  /** Extra attempts after a connection failure (never after the request was sent). */
  retries: z.number().int().min(0).max(5).default(1),
  maxConnections: z.number().int().positive().max(10_000).default(64),
  tls: z
    .strictObject({
      /** PEM file of the CAs that may sign the upstream's certificate; default: Postern's CA bundle. */
      caFile: z.string().min(1).optional(),
      /** Present the gateway's own certificate to the upstream (mTLS). */
      clientCertificate: z.boolean().default(true),
      /** base64 SHA-256 of the upstream certificate's SubjectPublicKeyInfo; any match passes. */
      pinSha256: z.array(z.string().regex(/^[A-Za-z0-9+/]{43}=$/, "must be base64 of 32 bytes")).default([]),
    })
    .prefault({}),
  /** Headers added to the forwarded request, naming the client: header name -> identity field. */
  identityHeaders: z
    .record(z.string().regex(/^[A-Za-z0-9-]+$/), z.enum(["id", "roles", "serial", "fingerprint"]))
    .default({ "x-postern-identity": "id", "x-postern-roles": "roles" }),
  breaker: z
    .strictObject({
      /** Consecutive failures that open the breaker. */
      failureThreshold: z.number().int().positive().max(1000).default(5),
      /** How long it stays open before one trial request (half-open). */
      openSeconds: z.number().positive().max(3600).default(30),
    })
    .prefault({}),
});

export const backendSchema = z.discriminatedUnion("type", [streamBackend, httpBackend]);
