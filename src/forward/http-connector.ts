/**
 * How the HTTP backend opens connections to its upstream: undici's connector with Postern's
 * trust anchors, optional mTLS with the gateway's certificate, optional SPKI pinning, and a
 * mark on every error raised before a connection existed (so only those are ever retried).
 */
import { createHash, X509Certificate } from "node:crypto";
import { createRequire } from "node:module";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import type { buildConnector } from "undici";

const requireCjs = createRequire(import.meta.url);

/**
 * undici, loaded when the first HTTP backend is built: a gateway without one (and every CLI
 * command but those that make requests) does not pay its ~120 ms of loading. CommonJS, so
 * `require` loads it at once and the constructors stay synchronous.
 */
export function undici(): typeof import("undici") {
  return requireCjs("undici") as typeof import("undici");
}

export interface UpstreamTlsOptions {
  /** PEM of the CAs that may sign the upstream's certificate. */
  caPem: string;
  /** Presented to the upstream when set (mTLS). */
  clientCertificate?: { certPem: string; keyPem: string } | undefined;
  /** base64 SHA-256 of the upstream leaf's SubjectPublicKeyInfo; empty = no pinning. */
  pinSha256: readonly string[];
}

export interface UpstreamConnector {
  connect: buildConnector.connector;
  /** True when `error` was raised while connecting, before any request byte was written. */
  isConnectFailure(error: unknown): boolean;
}

/** Error code of a connection refused because the upstream's key is not pinned. */
export const PIN_MISMATCH = "ERR_POSTERN_PIN_MISMATCH";

/** base64 SHA-256 of a certificate's SubjectPublicKeyInfo (the HPKP / `pinSha256` form). */
export function spkiSha256(certDer: Uint8Array): string {
  const spki = new X509Certificate(certDer).publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest("base64");
}

/**
 * Builds the connector. TLS always verifies the chain and the host name (never
 * `rejectUnauthorized: false`); with pins, a verified chain whose leaf key is not pinned is
 * refused as well.
 */
export function upstreamConnector(options: UpstreamTlsOptions & { timeoutMs: number }): UpstreamConnector {
  const pins = new Set(options.pinSha256);
  const base = undici().buildConnector({
    timeout: options.timeoutMs,
    ca: options.caPem,
    rejectUnauthorized: true,
    ...(options.clientCertificate ? { cert: options.clientCertificate.certPem, key: options.clientCertificate.keyPem } : {}),
    checkServerIdentity: (host: string, cert: PeerCertificate) => {
      const error = checkServerIdentity(host, cert);
      if (error) return error;
      if (pins.size > 0 && !pins.has(spkiSha256(cert.raw))) {
        return Object.assign(new Error("the upstream's public key is not pinned"), { code: PIN_MISMATCH });
      }
      return undefined;
    },
  });
  const connectFailures = new WeakSet<object>();
  return {
    connect(connectOptions, callback) {
      base(connectOptions, (...args) => {
        const [error] = args;
        if (error) connectFailures.add(error);
        callback(...args);
      });
    },
    isConnectFailure: (error) => typeof error === "object" && error !== null && connectFailures.has(error),
  };
}
