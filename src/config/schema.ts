import { z } from "zod";
import { backendSchema } from "./backend-schema.js";
import { crossChecks } from "./checks.js";
import { routeSchema, type rateLimitSchema } from "./route-schema.js";
import { host, isIpOrCidr, listener, nonEmptyName, port } from "./schema-common.js";

export { backendSchema } from "./backend-schema.js";
export { routeSchema } from "./route-schema.js";

/**
 * The one schema of Postern's configuration: every key, its default, units in the names.
 * `config/postern.yaml` mirrors these defaults for people to read; this file (with the
 * backend and route schemas beside it) is the truth.
 */

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
  /** EST serverkeygen: the CA makes the key and returns it with the certificate. Off unless set. */
  serverKeygen: z.boolean().optional(),
});

/** When a growing file is rotated: 64 MiB or a day by default. */
const rotationKeys = {
  /** Rotate once the file holds this many bytes (0: never by size). */
  rotateBytes: z.number().int().min(0).default(64 * 1024 * 1024),
  /** Rotate once the file's first line is this old (0: never by age). */
  rotateAfterSeconds: z.number().int().min(0).default(86_400),
};

const rotationSchema = z.strictObject(rotationKeys).prefault({});

/** Rotation, and what is kept of rotated files: at most `keepFiles`, none older than `keepSeconds` (0: no limit). */
function retentionSchema(keepFiles: number, keepSeconds: number) {
  return z
    .strictObject({
      ...rotationKeys,
      keepFiles: z.number().int().min(0).default(keepFiles),
      keepSeconds: z.number().int().min(0).default(keepSeconds),
    })
    .prefault({});
}

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
        /**
         * Reload the server certificate, its key and the CA bundle for new handshakes when their
         * files in pki.dir change (atomic renames and Kubernetes Secret updates included). false:
         * only on SIGHUP and `postern cert renew-server`.
         */
        watchFiles: z.boolean().default(true),
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
            serverKeygen: false,
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
    data: z
      .strictObject({
        dir: z.string().min(1).default("data"),
        /**
         * Rotation and retention of embedded mode's growing files. A file is renamed to
         * `<file>.<NNNNNN>` before a write once it holds `rotateBytes` or its first line is
         * `rotateAfterSeconds` old; then the oldest rotated files beyond `keepFiles` or older
         * than `keepSeconds` (0: no limit) are removed, except those a replay window still reads.
         */
        retention: z
          .strictObject({
            /** Message files of stream backends. Nothing is removed by default: a consumer may still read them. */
            messages: retentionSchema(0, 0),
            /** The nonce journal of HTTP backends: rotated journals go once their claims have expired. */
            nonces: rotationSchema,
            /** The audit log. Nothing is removed by default; removing the oldest keeps the rest verifiable. */
            audit: retentionSchema(0, 0),
          })
          .prefault({}),
      })
      .prefault({}),
    admin: z
      .strictObject({
        /**
         * A TOTP second factor (RFC 6238) on the admin actions that change the PKI, on top of the
         * admin certificate. `auto`: required once any admin has enrolled
         * (`postern admin otp enroll`); `on`: always (an admin without one is refused); `off`.
         */
        otp: z
          .strictObject({
            mode: z.enum(["auto", "on", "off"]).default("auto"),
            /** Which actions need a code: token (create), issue, revoke, connection-close. */
            actions: z.array(z.enum(["token", "issue", "revoke", "connection-close"])).default(["token", "issue", "revoke", "connection-close"]),
            /** Refused codes per admin within the window before every code is refused (429). */
            maxFailures: z.number().int().min(1).max(100).default(5),
            failureWindowSeconds: z.number().int().min(10).max(86_400).default(300),
          })
          .prefault({}),
      })
      .prefault({}),
    /**
     * Processes that serve the data listener: 1 (the default) is one process and no cluster;
     * N > 1 forks N node:cluster workers that share the data port, while the primary keeps the
     * admin and public listeners, the PKI and, in embedded mode, the replay set and the message
     * files (workers reach them over the cluster channel). `auto`: one worker per core.
     */
    workers: z.union([z.literal("auto"), z.number().int().min(1).max(256)]).default(1),
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
          sealed: "forbidden",
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
