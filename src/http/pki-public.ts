import { PosternError } from "../errors.js";
import { type CertificateAuthority, type CrlPublisher, decodeOcspGetPath, MAX_OCSP_REQUEST_BYTES } from "../pki/index.js";
import { mediaType } from "../gateway/index.js";
import { readBody } from "./body.js";
import { sendBytes } from "./respond.js";
import type { PublicEndpoint } from "./public-server.js";

/**
 * The PKI's public documents: the issuing CA's CRL (DER at /crl, the CDP of issued
 * certificates), the root CA's CRL (DER at /crl/root, the CDP of the issuing CA), both as one
 * PEM at /crl.pem (what `openssl verify -crl_check_all -CRLfile` needs), and the OCSP responder
 * (RFC 6960: POST /ocsp, GET /ocsp/<base64 request>). All are signed, so plain HTTP is the
 * norm for them.
 */
export function pkiPublicEndpoints(deps: { crl: CrlPublisher; authority: CertificateAuthority }): PublicEndpoint[] {
  const current = async () => {
    const crl = await deps.crl.latest();
    if (!crl) throw new PosternError("backend-unavailable", "no CRL has been built yet", { extensions: { retryAfterSeconds: 5 } });
    return crl;
  };
  const crlHeaders = (nextUpdateMs: number) => ({
    "cache-control": `public, max-age=${Math.max(0, Math.min(3600, Math.floor((nextUpdateMs - Date.now()) / 1000)))}`,
    expires: new Date(nextUpdateMs).toUTCString(),
  });
  return [
    {
      path: "/crl",
      methods: ["GET", "HEAD"],
      async handle(req, res) {
        const crl = await current();
        sendBytes(req, res, 200, "application/pkix-crl", crl.der, crlHeaders(crl.nextUpdateMs));
      },
    },
    {
      path: "/crl/root",
      methods: ["GET", "HEAD"],
      handle(req, res) {
        const root = deps.crl.rootCrl;
        if (!root) throw new PosternError("not-found", "this gateway has no root CRL (root-ca.crl)");
        sendBytes(req, res, 200, "application/pkix-crl", root.der, { "cache-control": "public, max-age=3600" });
      },
    },
    {
      path: "/crl.pem",
      methods: ["GET", "HEAD"],
      async handle(req, res) {
        const crl = await current();
        sendBytes(req, res, 200, "application/x-pem-file", deps.crl.bundlePem(crl), crlHeaders(crl.nextUpdateMs));
      },
    },
    {
      path: "/ocsp",
      methods: ["POST"],
      async handle(req, res) {
        if (mediaType(req.headers["content-type"]) !== "application/ocsp-request") throw new PosternError("unsupported-media-type", "send application/ocsp-request");
        const body = await readBody(req, MAX_OCSP_REQUEST_BYTES);
        sendBytes(req, res, 200, "application/ocsp-response", await deps.authority.ocsp(body), { "cache-control": "no-store" });
      },
    },
    {
      path: "/ocsp/*",
      methods: ["GET"],
      async handle(req, res) {
        const der = decodeOcspGetPath((req.url ?? "").split("?")[0]!);
        if (!der) throw new PosternError("bad-request", "the path is not a base64 OCSP request");
        sendBytes(req, res, 200, "application/ocsp-response", await deps.authority.ocsp(der), { "cache-control": "public, max-age=300" });
      },
    },
  ];
}
