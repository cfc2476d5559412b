import type { AdminEndpoint, AdminReply, AdminRequest } from "../admin/index.js";
import { PosternError } from "../errors.js";
import type { EstOperation, MetricsRecorder } from "../metrics/index.js";
import { type CertificateAuthority, certsOnlyCms, csrAttributes, type EnrolledResult, type IssuedResult } from "../pki/index.js";
import { credentialOf, EST_CHALLENGE } from "./credentials.js";
import { base64Lines, csrPemFromBody, leafDerOf, MAX_EST_BODY_BYTES, multipartMixed } from "./wire.js";

export interface EstDeps {
  ca: CertificateAuthority;
  metrics: MetricsRecorder;
}

/** RFC 7030 §3.2.2: the well-known prefix; `<prefix>/<label>/<operation>` names a profile. */
export const EST_PREFIX = "/.well-known/est";

const CERTS_ONLY = "application/pkcs7-mime; smime-type=certs-only";
const BASE64 = { "content-transfer-encoding": "base64" } as const;

type Operation = { method: "GET" | "POST"; handle(request: AdminRequest, label: string | undefined): Promise<AdminReply> };

/**
 * EST (RFC 7030) on the admin listener, at `/.well-known/est/<operation>` and, for a named
 * profile, `/.well-known/est/<profile>/<operation>`: cacerts, simpleenroll (an enrollment
 * token as the Basic password or a Bearer token, or a valid client certificate of the same
 * identity), simplereenroll (the current certificate over mTLS, as `postern renew`),
 * csrattrs, and serverkeygen where the profile sets `serverKeygen` (off by default). Every
 * check is the PKI's: the same CSR policy, token rules (a refusal never spends the token) and
 * audit lines, with `via: "est"`. Each request is counted by operation and outcome; the
 * listener's connection caps and handshake rate apply as to all enrollment.
 */
export function estEndpoints(deps: EstDeps): AdminEndpoint[] {
  const { ca } = deps;
  const operations: Record<EstOperation, Operation> = {
    cacerts: {
      method: "GET",
      async handle() {
        return certsOnly(ca.caCertificatesDer());
      },
    },
    simpleenroll: {
      method: "POST",
      async handle(request, label) {
        return issuedReply(await enroll(ca, request, label, false));
      },
    },
    simplereenroll: {
      method: "POST",
      async handle(request, label) {
        if (!request.peer) throw new PosternError("unauthenticated", "simplereenroll needs the current certificate as the TLS client certificate");
        const csrPem = csrPemFromBody(request.headers, await request.bytes(MAX_EST_BODY_BYTES));
        return issuedReply(await ca.renew({ peerCertDer: request.peer.certDer, csrPem, ...(label !== undefined ? { profile: label } : {}), via: "est" }));
      },
    },
    csrattrs: {
      method: "GET",
      async handle(_request, label) {
        const der = csrAttributes(ca.profile(label));
        // An empty SEQUENCE says nothing: RFC 7030 §4.5.2 answers that with 204.
        if (der.length <= 2) return { status: 204 };
        return { status: 200, contentType: "application/csrattrs", body: base64Lines(der), headers: BASE64 };
      },
    },
    serverkeygen: {
      method: "POST",
      async handle(request, label) {
        const issued = await enroll(ca, request, label, true);
        if (!issued.privateKeyPkcs8Der) throw new PosternError("internal", "the PKI made no key");
        // RFC 7030 §4.4.2: the key (PKCS#8, protected by TLS alone) first, then the certificate.
        const { contentType, body } = multipartMixed([
          { contentType: "application/pkcs8", der: issued.privateKeyPkcs8Der },
          { contentType: CERTS_ONLY, der: certsOnlyCms([leafDerOf(issued.certificate)]) },
        ]);
        return { status: 200, contentType, body };
      },
    },
  };
  const endpoints: AdminEndpoint[] = [];
  for (const [name, operation] of Object.entries(operations) as Array<[EstOperation, Operation]>) {
    const handle = measured(name, operation, deps);
    for (const path of [`${EST_PREFIX}/${name}`, `${EST_PREFIX}/:label/${name}`]) {
      // Anonymous at the router: each operation decides what it needs, so every refusal is
      // counted here; an expired certificate is let through for simplereenroll's grace period
      // and refused by the PKI everywhere else.
      endpoints.push({ method: operation.method, path, auth: "anonymous", allowExpired: true, handle });
    }
  }
  return endpoints;
}

/** Resolves the label, counts the outcome, and gives every 401 the challenge EST clients wait for. */
function measured(name: EstOperation, operation: Operation, { ca, metrics }: EstDeps): AdminEndpoint["handle"] {
  return async (request) => {
    try {
      const label = request.params.label;
      if (label !== undefined && !ca.hasProfile(label)) throw new PosternError("not-found", "no EST label (profile) of this name");
      const reply = await operation.handle(request, label);
      metrics.estRequest(name, "ok");
      return reply;
    } catch (error) {
      const code = error instanceof PosternError ? error.code : "internal";
      metrics.estRequest(name, code);
      if (error instanceof PosternError && error.status === 401) {
        throw new PosternError(error.code, error.detail, { cause: error, extensions: { ...error.extensions, wwwAuthenticate: EST_CHALLENGE } });
      }
      throw error;
    }
  };
}

/**
 * simpleenroll and serverkeygen: by the enrollment token in Authorization when there is one,
 * else by the TLS client certificate (same identity), else 401.
 */
async function enroll(ca: CertificateAuthority, request: AdminRequest, label: string | undefined, serverKeygen: boolean): Promise<EnrolledResult> {
  const credential = credentialOf(single(request.headers.authorization));
  if (credential.kind === "none" && !request.peer) {
    throw new PosternError("unauthenticated", "send an enrollment token (the HTTP Basic password, or Bearer) or a valid client certificate of the same identity");
  }
  const csrPem = csrPemFromBody(request.headers, await request.bytes(MAX_EST_BODY_BYTES));
  const common = { csrPem, ...(label !== undefined ? { profile: label } : {}), via: "est" as const, ...(serverKeygen ? { serverKeygen } : {}) };
  return credential.kind === "token"
    ? ca.enroll({ token: credential.token, ...common })
    : ca.enrollWithCertificate({ peerCertDer: request.peer!.certDer, ...common });
}

function certsOnly(certificatesDer: readonly Uint8Array[]): AdminReply {
  return { status: 200, contentType: CERTS_ONLY, body: base64Lines(certsOnlyCms(certificatesDer)), headers: BASE64 };
}

/** RFC 7030 §4.2.3: the answer holds only the issued certificate; the chain is at cacerts. */
function issuedReply(issued: IssuedResult): AdminReply {
  return certsOnly([leafDerOf(issued.certificate)]);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(",") : value;
}
