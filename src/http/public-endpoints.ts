import type { CertificateAuthority, CrlPublisher } from "../pki/index.js";
import { pkiPublicEndpoints } from "./pki-public.js";
import { sendJson } from "./respond.js";
import { staticEndpoint, type PublicEndpoint } from "./public-server.js";

/** What /readyz reports: 200 when `ready`, else 503; the rest says why. */
export interface Readiness {
  ready: boolean;
  mode: string;
  redis?: "up" | "down";
  storage?: "up" | "down";
  pki?: "state-lost";
  code?: string;
  /** With cluster workers: how many serve the data listener now, of how many configured (ready while at least one does). */
  workers?: { live: number; configured: number };
}

export interface PublicEndpointDeps {
  metrics: { contentType: string; metrics(): Promise<string> };
  /** Readiness: listening, not draining, and (Redis mode) Redis answers. */
  readiness: () => Readiness;
  caBundlePem: string;
  jwks: () => unknown;
  crl: CrlPublisher;
  authority: CertificateAuthority;
}

/** Everything the public listener serves: metrics, health, readiness, the CA, the JWKS, CRL and OCSP. */
export function publicEndpoints(deps: PublicEndpointDeps): PublicEndpoint[] {
  return [
    staticEndpoint("/metrics", deps.metrics.contentType, () => deps.metrics.metrics()),
    staticEndpoint("/healthz", "application/json", () => JSON.stringify({ status: "ok" })),
    {
      path: "/readyz",
      methods: ["GET", "HEAD"],
      handle: (_req, res) => {
        const { ready, ...rest } = deps.readiness();
        sendJson(res, ready ? 200 : 503, { status: ready ? "ready" : "not-ready", ...rest });
      },
    },
    staticEndpoint("/ca.pem", "application/x-pem-file", () => deps.caBundlePem),
    staticEndpoint("/.well-known/postern-keys", "application/jwk-set+json", () => JSON.stringify(deps.jwks())),
    ...pkiPublicEndpoints({ crl: deps.crl, authority: deps.authority }),
  ];
}
