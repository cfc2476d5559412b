// Loads the RFC 9421 Appendix B vectors and keys copied into test/fixtures/rfc9421/.
import { createPrivateKey, createPublicKey, createSecretKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import type { HttpMessageParts } from "../../src/signing/index.js";

const dir = new URL("../fixtures/rfc9421/", import.meta.url);
const read = (name: string) => readFileSync(new URL(name, dir), "utf8");

export interface VectorMessage {
  kind: "request" | "response";
  headers: [string, string][];
  body: string;
  method?: string;
  path?: string;
  query?: string;
  authority?: string;
  status?: number;
  expect_valid?: boolean;
}

export interface VectorCase {
  id: string;
  label: string;
  message: string;
  related_request?: string;
  covered_components: string[];
  signature_params: Record<string, string | number>;
  signature_params_serialized: string;
  signature_input_field: string;
  expected_signature_base: string;
  expected_signature: string;
  signature_field: string;
  keyid: string;
  algorithm: string;
  alg_param_present: boolean;
  deterministic: boolean;
  expect_valid: boolean;
}

export interface ComponentExample {
  rfc_section: string;
  what: string;
  message_raw?: string;
  scheme?: "http" | "https";
  expected_base_lines?: string[];
  expected_value?: string;
}

export interface Vectors {
  messages: Record<string, VectorMessage>;
  cases: VectorCase[];
  component_examples: ComponentExample[];
}

export const vectors = JSON.parse(read("vectors.json")) as Vectors;

/** Parts of a vector message (scheme is not stated by the RFC; https is used). */
export function partsOf(message: VectorMessage, extraHeaders: [string, string][] = []): HttpMessageParts {
  const headers = [...message.headers, ...extraHeaders];
  if (message.kind === "response") {
    return { method: "", scheme: "https", authority: "", path: "", query: "", headers, status: message.status! };
  }
  return {
    method: message.method!,
    scheme: "https",
    authority: message.authority!,
    path: message.path!,
    query: message.query!,
    headers,
  };
}

export function messageNamed(name: string): VectorMessage {
  const message = vectors.messages[name];
  if (message === undefined) throw new Error(`no vector message ${name}`);
  return message;
}

export const sharedSecret: KeyObject = createSecretKey(Buffer.from(read("test-shared-secret.b64").trim(), "base64"));

export function publicKeyFor(keyid: string): KeyObject {
  return keyid === "test-shared-secret" ? sharedSecret : createPublicKey(read(`${keyid}.public.pem`));
}

export function privateKeyFor(keyid: string): KeyObject {
  return keyid === "test-shared-secret" ? sharedSecret : createPrivateKey(read(`${keyid}.private.pem`));
}

/** Parse an RFC example message text (start line optional, "(SP)" = one space, obs-fold kept). */
export function partsFromRaw(raw: string, scheme: "http" | "https" = "https"): HttpMessageParts {
  const lines = raw.replaceAll("(SP)", " ").split("\n");
  const parts: HttpMessageParts = { method: "", scheme, authority: "", path: "", query: "", headers: [] };
  const headers: [string, string][] = [];
  const trailers: [string, string][] = [];
  let target = headers;
  const first = lines[0] ?? "";
  const request = /^([A-Z]+) (\S+) HTTP\/1\.1$/.exec(first);
  const response = /^HTTP\/1\.1 (\d{3})/.exec(first);
  if (request || response) lines.shift();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === "") {
      // Body: in the chunked example the trailers follow the last chunk ("0").
      const zero = lines.indexOf("0", i);
      if (zero < 0) break;
      i = zero;
      target = trailers;
      continue;
    }
    const last = target[target.length - 1];
    if (/^[ \t]/.test(line) && last) {
      last[1] += `\n${line}`;
      continue;
    }
    const colon = line.indexOf(":");
    target.push([line.slice(0, colon), line.slice(colon + 1)]);
  }
  if (request) {
    const [, method, requestTarget] = request as unknown as [string, string, string];
    const q = requestTarget.indexOf("?");
    parts.method = method;
    parts.path = q < 0 ? requestTarget : requestTarget.slice(0, q);
    parts.query = q < 0 ? "" : requestTarget.slice(q);
  }
  parts.authority = headers.find(([n]) => n.toLowerCase() === "host")?.[1] ?? "";
  if (response) parts.status = Number(response[1]);
  parts.headers = headers;
  if (trailers.length > 0) parts.trailers = trailers;
  return parts;
}
