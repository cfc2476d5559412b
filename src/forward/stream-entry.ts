import { createHash, type KeyObject } from "node:crypto";
import { FORWARD_TAG, signMessage, type HttpMessageParts } from "../signing/index.js";
import type { AcceptedMessage } from "./backend.js";

/** The gateway's forward-signing key and its JWKS `kid`. */
export interface ForwardSigner {
  key: KeyObject;
  keyid: string;
}

/** Components the gateway signs on everything it forwards (ARCHITECTURE.md, step 6). */
export const FORWARD_COMPONENTS = ["@method", "@authority", "@path", "@query", "content-type", "content-digest", "client-cert"] as const;

/**
 * RFC 9440 Client-Cert field value: the DER as a Structured Field Byte Sequence. Encoded per
 * message, not kept per connection: about 1 KB on every idle connection would cost more than
 * the microsecond it saves.
 */
export function clientCertField(der: Uint8Array): string {
  return `:${Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString("base64")}:`;
}

/** Each connection's certificate is hashed once, not once per message it carries. */
const certificateHashes = new WeakMap<Uint8Array, Buffer>();

/** The SHA-256 of a certificate's DER (shared: never change it): the `client-cert-sha256` field holds it as a Structured Field Byte Sequence. */
export function certificateSha256(der: Uint8Array): Buffer {
  let hash = certificateHashes.get(der);
  if (hash === undefined) {
    hash = createHash("sha256").update(der).digest();
    certificateHashes.set(der, hash);
  }
  return hash;
}

/**
 * How an entry names the client's certificate: `inline` carries the DER (RFC 9440
 * `client-cert`, about 1 KB of every entry); `reference` carries its SHA-256
 * (`client-cert-sha256`), and the backend keeps the DER once per thumbprint beside its streams.
 */
export type CertificateInEntry = "inline" | "reference";

/** Entry fields that travel as header fields of the rebuilt request, each one signed; by how the certificate is named. */
const STREAM_HEADER_FIELDS: Readonly<Record<CertificateInEntry, readonly string[]>> = {
  inline: ["content-type", "content-digest", "client-cert", "identity", "route", "received-at"],
  reference: ["content-type", "content-digest", "client-cert-sha256", "identity", "route", "received-at"],
};

/** What the gateway signs on a stream entry: the request line and every header field above. */
export const STREAM_COMPONENTS: Readonly<Record<CertificateInEntry, readonly string[]>> = {
  inline: ["@method", "@authority", "@path", "@query", ...STREAM_HEADER_FIELDS.inline],
  reference: ["@method", "@authority", "@path", "@query", ...STREAM_HEADER_FIELDS.reference],
};

/** Every field a stream entry may hold; a consumer refuses any other. */
export const STREAM_FIELDS: ReadonlySet<string> = new Set([
  "message-id",
  "method",
  "target-uri",
  ...STREAM_HEADER_FIELDS.inline,
  "client-cert-sha256",
  "body",
  "signature-input",
  "signature",
]);

/**
 * The fields of a stream entry: the forwarded request's components, the body, and the
 * gateway's RFC 9421 signature over all of them (`nonce` = message id), so a consumer can
 * rebuild the request with `streamEntryToRequest` and verify it; changing any field fails.
 */
export function buildStreamEntry(
  message: AcceptedMessage,
  signer: ForwardSigner,
  /** `inline`, or the certificate's SHA-256 (`certificateSha256`) for a `reference`. */
  certificate: "inline" | { sha256: Uint8Array } = "inline",
): Array<[string, string | Buffer]> {
  const form: CertificateInEntry = certificate === "inline" ? "inline" : "reference";
  const headers: Array<[string, string]> = [
    ["content-type", message.contentType],
    ["content-digest", message.contentDigest],
    certificate === "inline" ? ["client-cert", clientCertField(message.clientCertDer)] : ["client-cert-sha256", `:${Buffer.from(certificate.sha256).toString("base64")}:`],
    ["identity", message.identity.id],
    ["route", message.route],
    ["received-at", new Date(message.receivedAtMs).toISOString()],
  ];
  const signed = signMessage(
    { method: message.method, scheme: "https", authority: message.authority, path: message.path, query: message.query, headers },
    {
      key: signer.key,
      keyid: signer.keyid,
      components: STREAM_COMPONENTS[form],
      created: Math.floor(message.receivedAtMs / 1000),
      nonce: message.messageId,
      tag: FORWARD_TAG,
    },
  );
  return [
    ["message-id", message.messageId],
    ["method", message.method],
    ["target-uri", `https://${message.authority}${message.path}${message.query}`],
    ...headers,
    ["body", message.body],
    ["signature-input", signed.signatureInput],
    ["signature", signed.signature],
  ];
}

/**
 * Rebuilds the signed request from an entry's text fields, with how the entry names its
 * certificate (an entry with `client-cert-sha256` is `reference`, else `inline`); undefined
 * when a field is missing or the target URI is not an http(s) URI.
 */
export function streamEntryToRequest(field: (name: string) => string | undefined): { request: HttpMessageParts; certificate: CertificateInEntry } | undefined {
  const method = field("method");
  const target = field("target-uri");
  const certificate: CertificateInEntry = field("client-cert-sha256") !== undefined ? "reference" : "inline";
  const headers: Array<[string, string]> = [];
  for (const name of [...STREAM_HEADER_FIELDS[certificate], "signature-input", "signature"]) {
    const value = field(name);
    if (value === undefined) return undefined;
    headers.push([name, value]);
  }
  if (!method || !target) return undefined;
  // Split the URI by hand: URL would normalise the authority and path that were signed raw.
  const parsed = /^(https?):\/\/([^/?#\s]+)(\/[^?#\s]*)?(\?[^#\s]*)?$/.exec(target);
  if (!parsed) return undefined;
  return {
    request: { method, scheme: parsed[1] === "https" ? "https" : "http", authority: parsed[2]!, path: parsed[3] ?? "", query: parsed[4] ?? "", headers },
    certificate,
  };
}
