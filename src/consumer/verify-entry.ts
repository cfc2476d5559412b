import { createHash } from "node:crypto";
import { clientCertField, STREAM_COMPONENTS, STREAM_FIELDS, streamEntryToRequest } from "../forward/index.js";
import { FORWARD_TAG, verifyContentDigest, verifyMessage, type VerifyResult } from "../signing/index.js";
import type { GatewayKeys } from "./jwks.js";

/** A stream entry's fields, as XRANGE/XREADGROUP return them (or the embedded file's `fields`). */
export type StreamEntryFields = Readonly<Record<string, string | Buffer>>;

export interface VerifyEntryOptions {
  keys: GatewayKeys;
  /** How old an entry may be; entries wait in streams, so the default is 7 days. */
  maxAgeSeconds?: number;
  now?: () => number;
}

export type EntryVerification =
  | {
      ok: true;
      messageId: string;
      identity: string;
      body: Buffer;
      contentType: string;
      clientCertSha256: string;
      /** The request as the client sent it: method, path (no query) and the route it matched. */
      method: string;
      path: string;
      route: string;
    }
  | { ok: false; code: string; detail: string };

/**
 * Verifies a stream entry written by Postern: rebuilds the forwarded request from the entry's
 * fields, checks the gateway's RFC 9421 signature with the JWKS, and the body against the
 * signed Content-Digest. Any changed field fails. Never throws on a hostile entry.
 */
export function verifyStreamEntry(fields: StreamEntryFields, options: VerifyEntryOptions): EntryVerification {
  const text = (name: string) => {
    const value = fields[name];
    return value === undefined ? undefined : typeof value === "string" ? value : value.toString("utf8");
  };
  const unknown = Object.keys(fields).find((name) => !STREAM_FIELDS.has(name));
  if (unknown !== undefined) return { ok: false, code: "bad-request", detail: `unexpected field ${JSON.stringify(unknown.slice(0, 40))}` };
  const rebuilt = streamEntryToRequest(text);
  if (!rebuilt) return { ok: false, code: "bad-request", detail: "the entry lacks a field of the forwarded request" };
  const result: VerifyResult = verifyMessage(rebuilt.request, {
    resolveKey: (keyid) => {
      const key = options.keys.get(keyid);
      return key ? { key } : undefined;
    },
    now: options.now ?? Date.now,
    maxAgeSeconds: options.maxAgeSeconds ?? 7 * 86_400,
    clockSkewSeconds: 60,
    tag: FORWARD_TAG,
    requiredComponents: STREAM_COMPONENTS[rebuilt.certificate],
    requiredParameters: ["created", "nonce", "keyid", "tag"],
    allowedAlgorithms: ["ed25519", "ecdsa-p256-sha256", "ecdsa-p384-sha384", "rsa-pss-sha512"],
  });
  if (!result.ok) return { ok: false, code: result.code, detail: result.detail };
  const messageId = text("message-id");
  if (result.params.nonce !== messageId) return { ok: false, code: "signature-invalid", detail: "message-id is not the signed nonce" };
  const rawBody = fields.body;
  const body = rawBody === undefined ? Buffer.alloc(0) : Buffer.isBuffer(rawBody) ? rawBody : Buffer.from(rawBody, "utf8");
  const digest = verifyContentDigest([text("content-digest")!], body);
  if (!digest.ok) return { ok: false, code: digest.code, detail: digest.detail };
  const clientCertSha256 = certificateThumbprint(text, rebuilt.certificate);
  if (clientCertSha256 === undefined) return { ok: false, code: "bad-request", detail: `${rebuilt.certificate === "inline" ? "client-cert" : "client-cert-sha256"} is not a byte sequence` };
  return {
    ok: true,
    messageId: messageId!,
    identity: text("identity") ?? "",
    body,
    contentType: text("content-type")!,
    clientCertSha256,
    method: rebuilt.request.method,
    path: rebuilt.request.path,
    route: text("route") ?? "",
  };
}

/** The client certificate's SHA-256 (base64url) from the entry's signed field; undefined when the field is not a canonical Byte Sequence of the right kind. */
function certificateThumbprint(text: (name: string) => string | undefined, certificate: "inline" | "reference"): string | undefined {
  if (certificate === "inline") {
    const field = text("client-cert")!;
    const der = Buffer.from(field.slice(1, -1), "base64");
    return clientCertField(der) === field ? createHash("sha256").update(der).digest("base64url") : undefined;
  }
  const field = text("client-cert-sha256")!;
  const digest = Buffer.from(field.slice(1, -1), "base64");
  return digest.length === 32 && `:${digest.toString("base64")}:` === field ? digest.toString("base64url") : undefined;
}
