/**
 * EST's wire forms (RFC 7030 §4, as clarified by RFC 8951): bodies in both directions are
 * base64 of DER, whatever Content-Transfer-Encoding says; a CSR arrives as
 * `application/pkcs10`; server-generated keys travel in a `multipart/mixed` answer.
 */
import { randomBytes } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { PosternError } from "../errors.js";

/** A base64 CSR is at most this long (a 16 KiB DER CSR, the PKI's limit, in base64 with line breaks). */
export const MAX_EST_BODY_BYTES = 32 * 1024;

/** The media type of a request, lower case, without parameters; "" when absent. */
export function mediaTypeOf(headers: Readonly<IncomingHttpHeaders>): string {
  return (headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
}

/**
 * The CSR of a base64 `application/pkcs10` body, as PEM for the PKI. Refuses another media
 * type (`unsupported-media-type`) and anything that is not base64 (`csr-invalid`); the PKI
 * then parses and checks the DER.
 */
export function csrPemFromBody(headers: Readonly<IncomingHttpHeaders>, body: Buffer): string {
  if (mediaTypeOf(headers) !== "application/pkcs10") throw new PosternError("unsupported-media-type", "send the CSR as application/pkcs10 (base64 of the DER)");
  const text = body.toString("latin1").replace(/\s+/g, "");
  if (text === "" || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) throw new PosternError("csr-invalid", "the body is not base64 (EST sends the CSR's DER in base64)");
  return `-----BEGIN CERTIFICATE REQUEST-----\n${text}\n-----END CERTIFICATE REQUEST-----\n`;
}

/** Base64 of DER in lines of 64 characters, each ending in a line feed (what `base64 -d` reads). */
export function base64Lines(der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString("base64");
  let out = "";
  for (let i = 0; i < b64.length; i += 64) out += `${b64.slice(i, i + 64)}\n`;
  return out;
}

/** The first PEM certificate of a chain, as DER (the issued leaf in the PKI's answers). */
export function leafDerOf(chainPem: string): Uint8Array {
  const m = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(chainPem);
  if (!m?.[1]) throw new PosternError("internal", "the PKI answered without a certificate");
  return new Uint8Array(Buffer.from(m[1].replace(/\s+/g, ""), "base64"));
}

export interface MultipartPart {
  contentType: string;
  der: Uint8Array;
}

/**
 * A `multipart/mixed` body (RFC 2046 §5.1) of base64 parts, each with its Content-Type and
 * `Content-Transfer-Encoding: base64`, for the serverkeygen answer (RFC 7030 §4.4.2). The
 * boundary is random, so no part can contain it (base64 has no "-" either).
 */
export function multipartMixed(parts: readonly MultipartPart[]): { contentType: string; body: string } {
  const boundary = `est-${randomBytes(12).toString("hex")}`;
  let body = "";
  for (const part of parts) {
    body += `--${boundary}\r\nContent-Type: ${part.contentType}\r\nContent-Transfer-Encoding: base64\r\n\r\n${base64Lines(part.der)}`;
  }
  body += `--${boundary}--\r\n`;
  return { contentType: `multipart/mixed; boundary=${boundary}`, body };
}
