import type { CertificateAuthority, CrlPublisher } from "../pki/index.js";
import { pkiPublicEndpoints } from "./pki-public.js";
import { PosternError } from "../errors.js";
import { sendBytes, sendJson } from "./respond.js";
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
  /** A sealing backend's public encryption keys (JWKS); undefined when the name is no such backend. */
  backendJwks: (backend: string) => unknown;
  crl: CrlPublisher;
  authority: CertificateAuthority;
}

/** Everything the public listener serves: metrics, health, readiness, the CA, the JWKS, backends' encryption keys, CRL and OCSP. */
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
    {
      path: "/.well-known/postern-backend-keys/:backend",
      methods: ["GET", "HEAD"],
      handle: (req, res) => {
        const last = (req.url ?? "").split("?")[0]!.split("/").at(-1) ?? "";
        const jwks = /^[A-Za-z0-9._-]+$/.test(last) ? deps.backendJwks(last) : undefined;
        if (jwks === undefined) throw new PosternError("not-found", "no backend of that name takes sealed bodies");
        sendBytes(req, res, 200, "application/jwk-set+json", JSON.stringify(jwks), { "cache-control": "public, max-age=60" });
      },
    },
    ...pkiPublicEndpoints({ crl: deps.crl, authority: deps.authority }),
  ];
}
