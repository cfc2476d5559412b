/**
 * Maps a verified client certificate to a ClientIdentity. Pure and cheap: it reads the fields
 * node:crypto / node:tls already parsed (no ASN.1 in JavaScript) and runs once per handshake.
 * It trusts its input: call it only with a certificate the TLS layer has verified.
 */
import { createHash } from "node:crypto";
import { canonicalSerial } from "./serial.js";

export interface ClientIdentity {
  /** First SAN URI, else the subject CN. */
  id: string;
  commonName?: string;
  /** Subject OU values, in order. */
  roles: string[];
  /** Lowercase hex of serialNumber as DER-encoded (a 00 byte kept before a high first bit). */
  serial: string;
  /** base64url SHA-256 of the DER. */
  fingerprint: string;
  notAfterMs: number;
}

/** node:crypto's X509Certificate, or an object with the same fields. */
export interface ParsedCertificateLike {
  raw: Buffer;
  subject: string;
  subjectAltName?: string | undefined;
  serialNumber: string;
  validTo: string;
  fingerprint256?: string;
}

/** The shape of `tlsSocket.getPeerCertificate()` (node's PeerCertificate). */
export interface PeerCertificateLike {
  raw: Buffer;
  subject: Readonly<Record<string, string | string[] | undefined>>;
  subjectaltname?: string | undefined;
  serialNumber: string;
  valid_to: string;
  fingerprint256?: string;
}

/** Thrown (as TypeError) when the certificate has neither a SAN URI nor a CN: no identity. */
export function identityFromCertificate(cert: ParsedCertificateLike | PeerCertificateLike): ClientIdentity {
  let cn: string[];
  let ou: string[];
  let san: string | undefined;
  let validTo: string;
  if (typeof cert.subject === "string") {
    const c = cert as ParsedCertificateLike;
    ({ cn, ou } = parseSubjectLines(c.subject));
    san = c.subjectAltName;
    validTo = c.validTo;
  } else {
    const p = cert as PeerCertificateLike;
    cn = asArray(p.subject["CN"]);
    ou = asArray(p.subject["OU"]);
    san = p.subjectaltname;
    validTo = p.valid_to;
  }
  const commonName = cn[cn.length - 1];
  const id = (san === undefined ? undefined : firstUri(san)) ?? commonName;
  if (id === undefined || id === "") throw new TypeError("certificate has no SAN URI and no CN");
  const identity: ClientIdentity = {
    id,
    roles: ou,
    serial: canonicalSerial(cert.serialNumber),
    fingerprint: fingerprintOf(cert),
    notAfterMs: Date.parse(validTo),
  };
  if (commonName !== undefined) identity.commonName = commonName;
  return identity;
}

function asArray(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  return typeof v === "string" ? [v] : [...v];
}

/** node prints the subject one attribute per line ("OU=a\nCN=b"); values may be JSON-quoted. */
function parseSubjectLines(subject: string): { cn: string[]; ou: string[] } {
  const cn: string[] = [];
  const ou: string[] = [];
  for (const line of subject.split("\n")) {
    const eq = line.indexOf("=");
    if (eq < 0) continue;
    const key = line.slice(0, eq);
    if (key !== "CN" && key !== "OU") continue;
    const value = unquote(line.slice(eq + 1));
    (key === "CN" ? cn : ou).push(value);
  }
  return { cn, ou };
}

function unquote(value: string): string {
  if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) {
    try {
      return JSON.parse(value) as string;
    } catch {
      return value;
    }
  }
  return value;
}

/**
 * The first "URI:" entry of node's subjectAltName text ("DNS:a, URI:b"). Since Node 17 values
 * with separators are JSON-quoted (CVE-2021-44532), so a quoted value is decoded, never split.
 */
function firstUri(san: string): string | undefined {
  let i = 0;
  while (i < san.length) {
    const colon = san.indexOf(":", i);
    if (colon < 0) return undefined;
    const type = san.slice(i, colon);
    let value: string;
    let next: number;
    if (san[colon + 1] === '"') {
      const end = closingQuote(san, colon + 2);
      value = unquote(san.slice(colon + 1, end + 1));
      next = end + 1;
    } else {
      const comma = san.indexOf(", ", colon + 1);
      next = comma < 0 ? san.length : comma;
      value = san.slice(colon + 1, next);
    }
    if (type === "URI") return value;
    i = next + 2;
  }
  return undefined;
}

function closingQuote(s: string, from: number): number {
  for (let j = from; j < s.length; j++) {
    if (s[j] === "\\") j++;
    else if (s[j] === '"') return j;
  }
  return s.length - 1;
}

function fingerprintOf(cert: { raw: Buffer; fingerprint256?: string }): string {
  if (cert.fingerprint256) return Buffer.from(cert.fingerprint256.replace(/:/g, ""), "hex").toString("base64url");
  return createHash("sha256").update(cert.raw).digest("base64url");
}
