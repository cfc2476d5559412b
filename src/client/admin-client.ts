import { Agent, request, type Dispatcher } from "undici";
import type { CertificateJson, CertificatePageJson, IdentityRevokedJson, IssuedCertificateJson, IssuedPkcs12Json, ServerRenewalJson, TokenJson } from "./admin-api.js";
import { PosternRequestError } from "./errors.js";

export interface AdminClientOptions {
  /** e.g. https://127.0.0.1:8444 */
  url: string;
  /** Client certificate chain and key PEM; omit both for token enrollment. */
  cert?: string | Buffer;
  key?: string | Buffer;
  ca: string | Buffer;
  /** A TOTP code sent as `Postern-OTP` with every call (the admin's second factor). */
  otp?: string;
}

/** A small client of Postern's admin API (JSON over mTLS). */
export class AdminClient {
  private readonly agent: Agent;
  private otp: string | undefined;

  constructor(private readonly options: AdminClientOptions) {
    this.otp = options.otp;
    this.agent = new Agent({
      connect: { ca: options.ca, ...(options.cert && options.key ? { cert: options.cert, key: options.key } : {}) },
    });
  }

  /** Calls an endpoint; resolves with the parsed JSON (or raw bytes for non-JSON answers); throws PosternRequestError on a problem. */
  async call(method: Dispatcher.HttpMethod, path: string, body?: unknown): Promise<unknown> {
    const response = await request(new URL(path, this.options.url), {
      method,
      dispatcher: this.agent,
      headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...(this.otp ? { "postern-otp": this.otp } : {}) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const bytes = Buffer.from(await response.body.arrayBuffer());
    const type = String(response.headers["content-type"] ?? "");
    const parsed: unknown = type.includes("json") && bytes.length > 0 ? JSON.parse(bytes.toString("utf8")) : bytes;
    if (response.statusCode >= 400) {
      throw new PosternRequestError(response.statusCode, (typeof parsed === "object" && parsed !== null && !Buffer.isBuffer(parsed) ? parsed : {}) as Record<string, unknown>);
    }
    return parsed;
  }

  /** POST /v1/server-certificate/renew: a new server certificate for the gateway, served at once. */
  renewServerCertificate(body: { keepKey?: boolean } = {}): Promise<ServerRenewalJson> {
    return this.call("POST", "/v1/server-certificate/renew", body) as Promise<ServerRenewalJson>;
  }

  /** Sets the one-time code sent with the next calls (a code is spent by its first accepted use). */
  setOneTimeCode(code: string | undefined): void {
    this.otp = code;
  }

  /** POST /v1/tokens: a one-time enrollment token bound to `identity`. */
  createToken(body: { identity: string; ttl?: string | number; roles?: string[]; profile?: string }): Promise<TokenJson> {
    return this.call("POST", "/v1/tokens", body) as Promise<TokenJson>;
  }

  /** POST /v1/enroll (no client certificate needed): a token and a CSR for a certificate. */
  enroll(token: string, csrPem: string): Promise<IssuedCertificateJson> {
    return this.call("POST", "/v1/enroll", { token, csr: csrPem }) as Promise<IssuedCertificateJson>;
  }

  /** POST /v1/certificates: certify a CSR. */
  issue(body: { csr: string; identity?: string; roles?: string[]; profile?: string; lifetime?: string | number }): Promise<IssuedCertificateJson> {
    return this.call("POST", "/v1/certificates", body) as Promise<IssuedCertificateJson>;
  }

  /** POST /v1/certificates/pkcs12: a server-made key and its certificate in a PKCS#12 bundle. */
  issuePkcs12(body: { identity: string; password: string; keyType?: string; roles?: string[]; profile?: string; lifetime?: string | number }): Promise<IssuedPkcs12Json> {
    return this.call("POST", "/v1/certificates/pkcs12", body) as Promise<IssuedPkcs12Json>;
  }

  /** GET /v1/certificates: one page of the inventory. */
  listCertificates(query: URLSearchParams = new URLSearchParams()): Promise<CertificatePageJson> {
    return this.call("GET", `/v1/certificates?${query}`) as Promise<CertificatePageJson>;
  }

  /** POST /v1/certificates/{serial}/revoke. */
  revoke(serial: string, reason?: string): Promise<CertificateJson> {
    return this.call("POST", `/v1/certificates/${encodeURIComponent(serial)}/revoke`, reason ? { reason } : {}) as Promise<CertificateJson>;
  }

  /** POST /v1/identities/revoke: every valid certificate of the identity. */
  revokeIdentity(identity: string, reason?: string): Promise<IdentityRevokedJson> {
    return this.call("POST", "/v1/identities/revoke", { identity, ...(reason ? { reason } : {}) }) as Promise<IdentityRevokedJson>;
  }

  /** POST /v1/renew, authenticated by the certificate being renewed; a CSR for a new key, or none to keep it. */
  renew(csrPem?: string): Promise<IssuedCertificateJson> {
    return this.call("POST", "/v1/renew", csrPem ? { csr: csrPem } : {}) as Promise<IssuedCertificateJson>;
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
