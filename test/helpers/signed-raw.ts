import { createPrivateKey, randomBytes, X509Certificate } from "node:crypto";
import { certificateThumbprint, createContentDigest, PROFILE_COMPONENTS, PROFILE_TAG, signMessage } from "../../src/signing/index.js";

export interface RawSignedRequest {
  /** Header lines as they go on the wire, signature fields included. */
  headers: Array<[string, string]>;
  body: Buffer;
  /** The whole request, ready to write on a socket. */
  text(extraLines?: Array<[string, string]>): string;
}

/**
 * A request signed over exactly the header lines given (the profile's components), so a test
 * can sign what no well-behaved client library would send: a Content-Digest naming an
 * algorithm twice, a duplicated field, and so on.
 */
export function signRawRequest(
  material: { cert: string | Buffer; key: string | Buffer },
  options: { authority: string; path: string; body: string; contentDigest?: string; nonce?: string; method?: string },
): RawSignedRequest {
  const body = Buffer.from(options.body);
  const method = options.method ?? "POST";
  const queryAt = options.path.indexOf("?");
  const headers: Array<[string, string]> = [
    ["host", options.authority],
    ["content-type", "application/json"],
    ["content-digest", options.contentDigest ?? createContentDigest(body, "sha-256")],
    ["content-length", String(body.length)],
  ];
  const signed = signMessage(
    {
      method,
      scheme: "https",
      authority: options.authority,
      path: queryAt < 0 ? options.path : options.path.slice(0, queryAt),
      query: queryAt < 0 ? "" : options.path.slice(queryAt),
      headers,
    },
    {
      key: createPrivateKey(material.key),
      keyid: certificateThumbprint(new X509Certificate(material.cert).raw),
      components: PROFILE_COMPONENTS,
      created: Math.floor(Date.now() / 1000),
      nonce: options.nonce ?? randomBytes(18).toString("base64url"),
      tag: PROFILE_TAG,
    },
  );
  headers.push(["signature-input", signed.signatureInput], ["signature", signed.signature]);
  return {
    headers,
    body,
    text(extraLines = []) {
      const lines = [...headers, ...extraLines].map(([k, v]) => `${k}: ${v}\r\n`).join("");
      return `${method} ${options.path} HTTP/1.1\r\n${lines}\r\n${body.toString("latin1")}`;
    },
  };
}
