/**
 * Builds and signs X.509 v3 certificates (RFC 5280 §4.1) from DER parts. The signature is
 * node:crypto's; this file only lays out the TBSCertificate, which is what makes issuance cost
 * tens of microseconds instead of the ~9 ms a generic ASN.1 library spends.
 */
import { createHash, randomBytes, sign, type KeyObject } from "node:crypto";
import { isIP } from "node:net";
import {
  DER_TRUE,
  bitString,
  ctx,
  ia5,
  namedBits,
  octets,
  oid,
  seq,
  set,
  time,
  tlv,
  uint,
  uintFromBytes,
  utf8,
  TAG,
  decodeBitString,
  expectChildren,
  readOne,
  type Bytes,
  type DerNode,
} from "../der/index.js";
import type { SignatureScheme } from "../keys/index.js";

export const OID = {
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  organizationalUnit: "2.5.4.11",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  crlDistributionPoints: "2.5.29.31",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  authorityInfoAccess: "1.3.6.1.5.5.7.1.1",
  ocsp: "1.3.6.1.5.5.7.48.1",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
  ocspSigning: "1.3.6.1.5.5.7.3.9",
} as const;

/** KeyUsage bit numbers (RFC 5280 §4.2.1.3). */
export const KEY_USAGE = {
  digitalSignature: 0,
  keyEncipherment: 2,
  keyCertSign: 5,
  cRLSign: 6,
} as const;

export interface CertificateTemplate {
  /** Serial magnitude bytes, encoded as a positive INTEGER. */
  serial: Uint8Array;
  issuerName: Uint8Array;
  subjectName: Uint8Array;
  notBeforeMs: number;
  notAfterMs: number;
  spki: Uint8Array;
  extensions: Uint8Array[];
}

const VERSION_3 = tlv(ctx(0, true), uint(2));

/** DER of the signed Certificate. */
export function signCertificate(t: CertificateTemplate, key: KeyObject, scheme: SignatureScheme): Bytes {
  const tbs = seq(
    VERSION_3,
    uintFromBytes(t.serial),
    scheme.algorithmIdentifier,
    t.issuerName,
    seq(time(t.notBeforeMs), time(t.notAfterMs)),
    t.subjectName,
    t.spki,
    tlv(ctx(3, true), seq(...t.extensions)),
  );
  const signature = sign(scheme.hash, tbs, key);
  return seq(tbs, scheme.algorithmIdentifier, bitString(new Uint8Array(signature.buffer, signature.byteOffset, signature.byteLength)));
}

/** 16 random bytes with the top bit clear and a non-zero first byte: positive, always 16 bytes encoded. */
export function randomSerial(): Bytes {
  for (;;) {
    const b = new Uint8Array(randomBytes(16));
    b[0] = (b[0] as number) & 0x7f;
    if (b[0] !== 0) return b;
  }
}

export interface NameParts {
  organization?: string;
  organizationalUnits?: readonly string[];
  commonName?: string;
}

const attribute = (type: string, value: string): Bytes => set(seq(oid(type), utf8(value)));

/** A Name with one attribute per RDN, in the order O, OU..., CN. */
export function encodeName(parts: NameParts): Bytes {
  const rdns: Bytes[] = [];
  if (parts.organization !== undefined) rdns.push(attribute(OID.organization, parts.organization));
  for (const ou of parts.organizationalUnits ?? []) rdns.push(attribute(OID.organizationalUnit, ou));
  if (parts.commonName !== undefined) rdns.push(attribute(OID.commonName, parts.commonName));
  return seq(...rdns);
}

export function extension(type: string, critical: boolean, value: Uint8Array): Bytes {
  return critical ? seq(oid(type), DER_TRUE, octets(value)) : seq(oid(type), octets(value));
}

export function basicConstraints(ca: boolean, pathLength?: number): Bytes {
  if (!ca) return extension(OID.basicConstraints, true, seq());
  const parts = [DER_TRUE];
  if (pathLength !== undefined) parts.push(uint(pathLength));
  return extension(OID.basicConstraints, true, seq(...parts));
}

export const keyUsage = (bits: readonly number[]): Bytes => extension(OID.keyUsage, true, namedBits(bits));

export const extKeyUsage = (oids: readonly string[]): Bytes =>
  extension(OID.extKeyUsage, false, seq(...oids.map((o) => oid(o))));

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value. */
export function keyIdentifierOf(spki: Uint8Array): Bytes {
  const bits = subjectPublicKeyBits(spki);
  return new Uint8Array(createHash("sha1").update(bits).digest());
}

function subjectPublicKeyBits(spki: Uint8Array): Uint8Array {
  const [, key] = expectChildren(readOne(spki, TAG.sequence), 2);
  return decodeBitString(key as DerNode).bytes;
}

export const subjectKeyIdentifier = (keyId: Uint8Array): Bytes =>
  extension(OID.subjectKeyIdentifier, false, octets(keyId));

export const authorityKeyIdentifier = (keyId: Uint8Array): Bytes =>
  extension(OID.authorityKeyIdentifier, false, seq(tlv(ctx(0, false), keyId)));

export interface AltNames {
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  uris?: readonly string[];
}

/** SubjectAltName, or undefined when there are no names. Throws RangeError on a bad IP. */
export function subjectAltName(names: AltNames, critical = false): Bytes | undefined {
  const general: Bytes[] = [];
  for (const d of names.dnsNames ?? []) general.push(retag(ia5(d), ctx(2, false)));
  for (const ip of names.ipAddresses ?? []) general.push(tlv(ctx(7, false), ipBytes(ip)));
  for (const u of names.uris ?? []) general.push(retag(ia5(u), ctx(6, false)));
  if (general.length === 0) return undefined;
  return extension(OID.subjectAltName, critical, seq(...general));
}

function retag(encoded: Uint8Array, tag: number): Bytes {
  const copy = encoded.slice();
  copy[0] = tag;
  return copy;
}

export function ipBytes(ip: string): Bytes {
  const family = isIP(ip);
  if (family === 4) return Uint8Array.from(ip.split(".").map((p) => Number(p)));
  if (family !== 6) throw new RangeError(`not an IP address: ${ip}`);
  const [head = "", tail] = ip.split("::") as [string, string | undefined];
  const groups = (s: string): number[] => (s === "" ? [] : s.split(":")).flatMap(hextetOrV4);
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const zeros = tail === undefined ? 0 : 8 - h.length - t.length;
  const words = [...h, ...new Array<number>(zeros).fill(0), ...t];
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

function hextetOrV4(part: string): number[] {
  if (!part.includes(".")) return [Number.parseInt(part, 16)];
  const [a = 0, b = 0, c = 0, d = 0] = part.split(".").map((p) => Number(p));
  return [(a << 8) | b, (c << 8) | d];
}

export const crlDistributionPoint = (url: string): Bytes =>
  extension(
    OID.crlDistributionPoints,
    false,
    seq(seq(tlv(ctx(0, true), tlv(ctx(0, true), retag(ia5(url), ctx(6, false)))))),
  );

export const ocspAccess = (url: string): Bytes =>
  extension(OID.authorityInfoAccess, false, seq(seq(oid(OID.ocsp), retag(ia5(url), ctx(6, false)))));

export function derToPem(der: Uint8Array, label = "CERTIFICATE"): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString("base64");
  let body = "";
  for (let i = 0; i < b64.length; i += 64) body += b64.slice(i, i + 64) + "\n";
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}
