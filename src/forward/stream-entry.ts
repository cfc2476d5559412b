import type { KeyObject } from "node:crypto";
import { FORWARD_TAG, signMessage, type HttpMessageParts } from "../signing/index.js";
import type { AcceptedMessage } from "./backend.js";

/** The gateway's forward-signing key and its JWKS `kid`. */
export interface ForwardSigner {
  key: KeyObject;
  keyid: string;
}

/** Components the gateway signs on everything it forwards (ARCHITECTURE.md, step 6). */
export const FORWARD_COMPONENTS = ["@method", "@authority", "@path", "@query", "content-type", "content-digest", "client-cert"] as const;

/** RFC 9440 Client-Cert field value: the DER as a Structured Field Byte Sequence. */
export function clientCertField(der: Uint8Array): string {
  return `:${Buffer.from(der).toString("base64")}:`;
}

export function forwardedRequestParts(message: AcceptedMessage): HttpMessageParts {
  return {
    method: message.method,
    scheme: "https",
    authority: message.authority,
    path: message.path,
    query: message.query,
    headers: [
      ["content-type", message.contentType],
      ["content-digest", message.contentDigest],
      ["client-cert", clientCertField(message.clientCertDer)],
    ],
  };
}

/**
 * The fields of a stream entry: the forwarded request's components, the body, and the
 * gateway's RFC 9421 signature over them, so a consumer can rebuild the request and verify it.
 */
export function buildStreamEntry(message: AcceptedMessage, signer: ForwardSigner): Array<[string, string | Buffer]> {
  const parts = forwardedRequestParts(message);
  const signed = signMessage(parts, {
    key: signer.key,
    keyid: signer.keyid,
    components: FORWARD_COMPONENTS,
    created: Math.floor(message.receivedAtMs / 1000),
    nonce: message.messageId,
    tag: FORWARD_TAG,
  });
  return [
    ["message-id", message.messageId],
    ["identity", message.identity.id],
    ["route", message.route],
    ["method", message.method],
    ["target-uri", `https://${message.authority}${message.path}${message.query}`],
    ["content-type", message.contentType],
    ["content-digest", message.contentDigest],
    ["client-cert", clientCertField(message.clientCertDer)],
    ["received-at", new Date(message.receivedAtMs).toISOString()],
    ["body", message.body],
    ["signature-input", signed.signatureInput],
    ["signature", signed.signature],
  ];
}
