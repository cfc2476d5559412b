import { isIP } from "node:net";
import { z } from "zod";
import { crossChecks } from "./checks.js";

function isIpOrCidr(entry: string): boolean {
  const [address, bits, extra] = entry.split("/");
  if (extra !== undefined || !address || isIP(address) === 0) return false;
  if (bits === undefined) return true;
  const max = isIP(address) === 4 ? 32 : 128;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= max;
}

/**
 * The one schema of Postern's configuration: every key, its default, units in the names.
 * `config/postern.yaml` mirrors these defaults for people to read; this file is the truth.
 */

const port = z.number().int().min(0).max(65535);
const host = z.string().min(1);

const listener = (defaultHost: string, defaultPort: number) =>
  z.strictObject({ host: host.default(defaultHost), port: port.default(defaultPort) }).prefault({});

const nonEmptyName = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "must be 1-64 of [A-Za-z0-9._-]");

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

/** An issuance profile; every key optional, defaults in src/pki/profile.ts (strict, 24 h). */
const profileSchema = z.strictObject({
  maxLifetimeSeconds: z.number().int().min(60).max(90 * 86_400).optional(),
  defaultLifetimeSeconds: z.number().int().min(60).max(90 * 86_400).optional(),
  /** Globs: `*` within one path segment, `**` across. */
  allowedIdentityPatterns: z.array(z.string().min(1)).min(1).optional(),
  allowedSanPatterns: z.array(z.string().min(1)).optional(),
  roles: z.array(z.string().min(1)).optional(),
  allowedKeyTypes: z.array(z.enum(["P-256", "P-384", "Ed25519", "RSA"])).min(1).optional(),
  minRsaBits: z.number().int().min(2048).max(8192).optional(),
});

const routePath = z
  .string()
  .regex(/^\/[A-Za-z0-9._~:\/-]*$/, "must start with / and hold only path characters and :params");

const bucketLimit = {
  requestsPerSecond: z.number().positive().max(1_000_000),
  burst: z.number().int().positive().max(10_000_000),
};

/** Per-identity token bucket of a route, shared across replicas through Redis. */
const rateLimitSchema = z.strictObject({
  ...bucketLimit,
  /** First match wins: identities (trailing `*` = prefix) or roles that get other limits. */
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
      /** Identities (SAN URI or CN) allowed; `*` at the end matches any suffix. */
      identities: z.array(z.string().min(1)).default([]),
      /** Roles (certificate OU) allowed. */
      roles: z.array(z.string().min(1)).default([]),
    })
    .prefault({}),
  maxBodyBytes: z.number().int().positive().max(64 * 1024 * 1024).default(1024 * 1024),
  contentTypes: z.array(z.string().min(1)).min(1).default(["application/json"]),
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

export const configSchema = z
  .strictObject({
    listeners: z
      .strictObject({
        data: z
          .strictObject({
            host: host.default("0.0.0.0"),
            port: port.default(8443),
            /** Offer HTTP/2 (ALPN h2) beside HTTP/1.1. */
            http2: z.boolean().default(true),
            /** HTTP/2 streams a client may have open at once on one connection. */
            maxConcurrentStreams: z.number().int().min(1).max(1000).default(100),
            /**
             * PROXY protocol v1/v2 from these load balancers (addresses or CIDR blocks): their
             * connections must start with a PROXY header, whose client address then counts for
             * limits and logs. Connections from other addresses are served as direct clients.
             */
            proxyProtocol: z
              .strictObject({
                trustedSources: z
                  .array(z.string().refine((entry) => isIpOrCidr(entry), "must be an IP address or a CIDR block"))
                  .min(1),
              })
              .optional(),
          })
          .prefault({}),
        admin: listener("127.0.0.1", 8444),
        public: listener("127.0.0.1", 9464),
      })
      .prefault({}),
    tls: z
      .strictObject({
        minVersion: z.enum(["TLSv1.2", "TLSv1.3"]).default("TLSv1.2"),
        handshakeTimeoutSeconds: z.number().positive().max(120).default(10),
        /**
         * New connections per source address and instance (a full mTLS handshake costs about 55
         * keep-alive requests of CPU). 0 disables; raise it behind a load balancer that hides
         * client addresses.
         */
        handshakesPerSecondPerAddress: z.number().min(0).max(100_000).default(50),
        handshakeBurstPerAddress: z.number().int().min(1).max(1_000_000).default(100),
      })
      .prefault({}),
    pki: z
      .strictObject({
        /** Where the CA, server and signing keys live; bootstrapped on first start. */
        dir: z.string().min(1).default("certs"),
        /** Extra server certificate SANs (localhost, 127.0.0.1, ::1 and the host name are always in). */
        hostnames: z.array(z.string().min(1)).default([]),
        /** A file holding the CA passphrase (e.g. a mounted secret); else POSTERN_CA_PASSPHRASE, else <dir>/ca-passphrase. */
        passphraseFile: z.string().min(1).optional(),
        /** Base URL of the public listener as clients reach it, for CRL and OCSP URLs in certificates. */
        publicBaseUrl: z.url().optional(),
        /** Embedded mode's certificate inventory; default <dir>/store. With Redis the inventory lives in Redis. */
        storeDir: z.string().min(1).optional(),
        /** The hash-chained audit log (several instances may share it); default <data.dir>/audit.jsonl. */
        auditLogPath: z.string().min(1).optional(),
        /**
         * The trust ledger's directory: the CA's durable record of every issuance, revocation and
         * cRLNumber, that the store is checked against; default <dir>/state. Must be writable and,
         * with replicas, shared by all of them and persistent.
         */
        stateDir: z.string().min(1).optional(),
        /**
         * The forward-signing key ring (ring.json and one encrypted key per kid); default
         * <dir>/signing-keys. Written at start (a first key) and by `postern keys rotate`; with
         * replicas, shared by all of them and persistent, since consumers verify with its keys.
         */
        signingKeysDir: z.string().min(1).optional(),
        /**
         * Never write into `dir`: start from the files a gateway pod mounts (see POD_PKI_FILES in
         * src/pki/) and refuse, naming the file, whatever would need a write there (a missing or
         * stale built-in certificate). Then every writable location must lie outside `dir`.
         */
        readOnly: z.boolean().default(false),
        /** Issuance profiles by name. */
        profiles: z.record(nonEmptyName, profileSchema).default({
          client: {
            maxLifetimeSeconds: 86_400,
            allowedIdentityPatterns: ["spiffe://postern.local/client/*"],
            allowedSanPatterns: [],
            roles: ["client"],
            allowedKeyTypes: ["P-256", "P-384", "Ed25519", "RSA"],
            minRsaBits: 2048,
          },
          admin: { allowedIdentityPatterns: ["spiffe://postern.local/admin/*"], roles: ["admin"] },
        }),
        /** The profile used when a request names none. */
        defaultProfile: nonEmptyName.default("client"),
        /** How long after notAfter a certificate may still renew itself; 0 = never. */
        renewalGraceSeconds: z.number().int().min(0).max(30 * 86_400).default(0),
        /** CRL validity (nextUpdate - thisUpdate); it is rebuilt at a quarter of this and on every revocation. */
        crlValiditySeconds: z.number().int().min(3600).max(30 * 86_400).default(86_400),
      })
      .prefault({}),
    redis: z
      .strictObject({
        /** redis:// or rediss:// URL; empty means the single-instance embedded mode. With `cluster`, comma-separated seed node URLs. */
        url: z.string().default(""),
        /** Talk Redis Cluster protocol; every multi-key script keeps its keys in one hash slot. */
        cluster: z.boolean().default(false),
        keyPrefix: z.string().regex(/^[A-Za-z0-9:._-]*$/).default("postern:"),
        commandTimeoutSeconds: z.number().positive().max(60).default(2),
        /**
         * Redis Sentinel instead of `url`: the master named `masterName`, found through these
         * Sentinels (host:port); failovers are followed. `url` may still carry the password and TLS scheme.
         */
        sentinel: z
          .strictObject({
            masterName: z.string().min(1),
            nodes: z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, "must be host:port")).min(1),
          })
          .optional(),
        /**
         * Before a 202 (and before an HTTP forward), WAIT until this many replicas hold the
         * write, or answer 503 replication-timeout. 0 = off: a 202 then means "in the master".
         */
        waitReplicas: z
          .strictObject({
            replicas: z.number().int().min(0).max(16).default(0),
            timeoutMs: z.number().int().positive().max(60_000).default(200),
          })
          .prefault({}),
      })
      .superRefine((redis, ctx) => {
        if (redis.sentinel && redis.cluster) ctx.addIssue({ code: "custom", path: ["sentinel"], message: "cannot be combined with cluster: true" });
        if (redis.waitReplicas.replicas > 0 && redis.cluster) {
          ctx.addIssue({ code: "custom", path: ["waitReplicas", "replicas"], message: "is not supported with cluster: true yet (WAIT must reach the master of each backend's slot)" });
        }
      })
      .prefault({}),
    signature: z
      .strictObject({
        maxAgeSeconds: z.number().int().positive().max(86_400).default(300),
        clockSkewSeconds: z.number().int().min(0).max(600).default(30),
        tag: z.string().min(1).default("postern"),
      })
      .prefault({}),
    limits: z
      .strictObject({
        maxHeaderBytes: z.number().int().min(1024).max(1024 * 1024).default(16 * 1024),
        /** Header lines per request; more is answered 431 (never silently dropped). */
        maxHeaderCount: z.number().int().min(16).max(10_000).default(100),
        /** Time to receive a request's header section: from the connection's start (idle before the first request) or from the request's first byte. */
        headersTimeoutSeconds: z.number().positive().max(600).default(10),
        /** Time to receive a whole request, body included. */
        requestTimeoutSeconds: z.number().positive().max(600).default(30),
        /** Idle time allowed between requests on a keep-alive connection. */
        keepAliveTimeoutSeconds: z.number().positive().max(600).default(60),
        /** Open connections per listener and instance; 0 = no limit. */
        maxConnections: z.number().int().min(0).max(1_000_000).default(10_000),
        /** Open connections per client address (counted before the TLS handshake); 0 = no limit. Raise it behind a load balancer that hides client addresses. */
        maxConnectionsPerAddress: z.number().int().min(0).max(1_000_000).default(256),
        /** Open connections per client identity; 0 = no limit. */
        maxConnectionsPerIdentity: z.number().int().min(0).max(1_000_000).default(128),
        /** Admin listener: open connections without a client certificate (enrollment), in all and per address. */
        maxAnonymousConnections: z.number().int().min(0).max(100_000).default(64),
        maxAnonymousConnectionsPerAddress: z.number().int().min(0).max(100_000).default(4),
      })
      .prefault({}),
    data: z.strictObject({ dir: z.string().min(1).default("data") }).prefault({}),
    log: z
      .strictObject({
        /** Lines below this level are not written. */
        level: z.enum(["debug", "info", "warn", "error", "silent"]).default("info"),
        /** One line per request on the data and admin listeners (request id, identity, route, outcome, status, latency). */
        access: z.boolean().default(true),
        /** Human-readable lines instead of JSON; default: when stderr is a terminal. */
        pretty: z.boolean().optional(),
      })
      .prefault({}),
    shutdown: z
      .strictObject({
        /** After SIGTERM, /readyz answers 503 this long while the listeners keep serving, so load balancers stop sending first. */
        readinessDelaySeconds: z.number().min(0).max(300).default(5),
        /** Then how long requests in flight may take before their connections are cut. */
        drainTimeoutSeconds: z.number().min(0).max(600).default(10),
      })
      .prefault({}),
    backends: z
      .record(nonEmptyName, backendSchema)
      .default({ messages: { type: "stream", stream: "messages", maxStreams: 256, trim: { strategy: "maxlen", maxLength: 1_000_000, approximate: true } } }),
    routes: z
      .array(routeSchema)
      .default([
        {
          name: "messages",
          method: "POST",
          path: "/v1/messages/:topic",
          backend: "messages",
          allow: { identities: [], roles: ["client"] },
          maxBodyBytes: 1024 * 1024,
          contentTypes: ["application/json"],
        },
      ]),
  })
  .superRefine(crossChecks);

export type PosternConfig = z.infer<typeof configSchema>;

/** Redis mode: a URL or a Sentinel group is configured; otherwise the embedded single-instance mode. */
export function usesRedis(config: Pick<PosternConfig, "redis">): boolean {
  return config.redis.url !== "" || config.redis.sentinel !== undefined;
}
export type RouteConfig = z.infer<typeof routeSchema>;
export type BackendConfig = z.infer<typeof backendSchema>;
export type RateLimitConfig = z.infer<typeof rateLimitSchema>;
