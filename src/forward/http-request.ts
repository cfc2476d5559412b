/**
 * The request the HTTP backend sends upstream, built from scratch from an accepted message and
 * signed by the gateway. Pure: no I/O.
 */
import { FORWARD_TAG, signMessage, type HttpMessageParts } from "../signing/index.js";
import type { AcceptedMessage } from "./backend.js";
import { identityHeaderValues, joinUpstreamPath, type IdentityField } from "./http-headers.js";
import { clientCertField, FORWARD_COMPONENTS, type ForwardSigner } from "./stream-entry.js";

/** Lifetime of the gateway's forward signature: the upstream should see it within a minute. */
export const FORWARD_SIGNATURE_SECONDS = 60;
/** The signature label, distinct from a client's `sig1`. */
export const FORWARD_LABEL = "postern";

export interface UpstreamRequest {
  method: string;
  /** Path and query, base path prefix included. */
  path: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
}

/**
 * The forwarded request: the message's method, body, content type and digest, the RFC 9440
 * `Client-Cert`, the identity headers, `x-postern-message-id`, and an RFC 9421 signature over
 * FORWARD_COMPONENTS of the upstream request (its own @authority, @path and @query) with
 * `created`, `expires` = created + 60, `nonce` = message id, `tag="postern-forward"`, label
 * `postern`. No client header is copied: identity headers and the client's own signature
 * fields (RFC 9421 §7.3.7) can never reach the upstream from the client.
 */
export function buildUpstreamRequest(
  message: AcceptedMessage,
  upstream: { base: URL; identityHeaders: Readonly<Record<string, IdentityField>>; signer: ForwardSigner; nowMs: number },
): UpstreamRequest {
  const target = joinUpstreamPath(upstream.base, message.path, message.query);
  const clientCert = clientCertField(message.clientCertDer);
  const parts: HttpMessageParts = {
    method: message.method,
    scheme: upstream.base.protocol === "https:" ? "https" : "http",
    authority: upstream.base.host,
    path: target.path,
    query: target.query,
    headers: [
      ["content-type", message.contentType],
      ["content-digest", message.contentDigest],
      ["client-cert", clientCert],
    ],
  };
  const created = Math.floor(upstream.nowMs / 1000);
  const signed = signMessage(parts, {
    key: upstream.signer.key,
    keyid: upstream.signer.keyid,
    label: FORWARD_LABEL,
    components: FORWARD_COMPONENTS,
    created,
    expires: created + FORWARD_SIGNATURE_SECONDS,
    nonce: message.messageId,
    tag: FORWARD_TAG,
  });
  const headers: Record<string, string> = Object.fromEntries(identityHeaderValues(message.identity, upstream.identityHeaders));
  Object.assign(headers, {
    "content-type": message.contentType,
    "content-digest": message.contentDigest,
    "client-cert": clientCert,
    "x-postern-message-id": message.messageId,
    "signature-input": signed.signatureInput,
    signature: signed.signature,
  });
  const bodiless = (message.method === "GET" || message.method === "HEAD") && message.body.byteLength === 0;
  return { method: message.method, path: target.path + target.query, headers, body: bodiless ? undefined : message.body };
}
