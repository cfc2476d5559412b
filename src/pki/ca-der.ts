/**
 * Minimal, strict DER encoding and decoding (ITU-T X.690) for the structures the PKI builds and
 * reads on hot paths (TBSCertificate, CSR). It only frames bytes: no cryptography happens here.
 * The generic ASN.1 libraries cost milliseconds per certificate; this costs microseconds.
 */

/** Bytes backed by a plain ArrayBuffer (what WebCrypto and x509 accept as BufferSource). */
export type Bytes = Uint8Array<ArrayBuffer>;

export const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

function lengthBytes(length: number): Bytes {
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

function concat(parts: readonly Uint8Array[]): Bytes {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Encodes one TLV whose content is the concatenation of `content`. */
export function tlv(tag: number, ...content: Uint8Array[]): Bytes {
  const body = content.length === 1 ? (content[0] as Uint8Array) : concat(content);
  const len = lengthBytes(body.length);
  const out = new Uint8Array(1 + len.length + body.length);
  out[0] = tag;
  out.set(len, 1);
  out.set(body, 1 + len.length);
  return out;
}

export const seq = (...items: Uint8Array[]): Bytes => tlv(TAG.sequence, ...items);
export const set = (...items: Uint8Array[]): Bytes => tlv(TAG.set, ...items);
export const octets = (bytes: Uint8Array): Bytes => tlv(TAG.octetString, bytes);
export const utf8 = (s: string): Bytes => tlv(TAG.utf8String, new TextEncoder().encode(s));
export const ia5 = (s: string): Bytes => tlv(TAG.ia5String, asciiBytes(s));
export const DER_NULL = Uint8Array.of(TAG.null, 0);
export const DER_TRUE = Uint8Array.of(TAG.boolean, 1, 0xff);

/** Context-specific tag number `n`; constructed when `constructed`. */
export const ctx = (n: number, constructed: boolean): number => 0x80 | (constructed ? 0x20 : 0) | n;

function asciiBytes(s: string): Bytes {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7e || c < 0x20) throw new RangeError("IA5String value must be printable ASCII");
    out[i] = c;
  }
  return out;
}

/** A non-negative INTEGER from big-endian magnitude bytes, minimally encoded. */
export function uintFromBytes(magnitude: Uint8Array): Bytes {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  const pad = ((trimmed[0] ?? 0) & 0x80) !== 0 || trimmed.length === 0;
  return pad ? tlv(TAG.integer, Uint8Array.of(0), trimmed) : tlv(TAG.integer, trimmed);
}

export const uint = (n: number): Bytes => {
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return uintFromBytes(Uint8Array.from(bytes));
};

/** BIT STRING with no unused bits. */
export const bitString = (bytes: Uint8Array): Bytes => tlv(TAG.bitString, Uint8Array.of(0), bytes);

/** Named-bit BIT STRING (e.g. KeyUsage): bit 0 is the most significant bit of the first byte. */
export function namedBits(bits: readonly number[]): Bytes {
  const highest = Math.max(...bits);
  const bytes = new Uint8Array(Math.floor(highest / 8) + 1);
  for (const b of bits) bytes[b >> 3] = (bytes[b >> 3] ?? 0) | (0x80 >> (b & 7));
  const unused = 7 - (highest & 7);
  return tlv(TAG.bitString, Uint8Array.of(unused), bytes);
}

const oidCache = new Map<string, Bytes>();

/** OBJECT IDENTIFIER from dotted text; cached since the same few OIDs repeat. */
export function oid(dotted: string): Bytes {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const arcs = dotted.split(".").map((a) => Number.parseInt(a, 10));
  const [a0, a1, ...rest] = arcs;
  if (a0 === undefined || a1 === undefined) throw new RangeError(`bad OID ${dotted}`);
  const bytes: number[] = [];
  for (const arc of [a0 * 40 + a1, ...rest]) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    bytes.push(...chunk);
  }
  const encoded = tlv(TAG.oid, Uint8Array.from(bytes));
  oidCache.set(dotted, encoded);
  return encoded;
}

/** Time as UTCTime before 2050 and GeneralizedTime from 2050 (RFC 5280 §4.1.2.5), whole seconds. */
export function time(ms: number): Bytes {
  const d = new Date(Math.floor(ms / 1000) * 1000);
  const year = d.getUTCFullYear();
  const p2 = (n: number) => String(n).padStart(2, "0");
  const rest = `${p2(d.getUTCMonth() + 1)}${p2(d.getUTCDate())}${p2(d.getUTCHours())}${p2(d.getUTCMinutes())}${p2(d.getUTCSeconds())}Z`;
  if (year >= 1950 && year < 2050) return tlv(TAG.utcTime, asciiBytes(p2(year % 100) + rest));
  return tlv(TAG.generalizedTime, asciiBytes(String(year).padStart(4, "0") + rest));
}

/** A decoded TLV: `bytes` is the whole element, `content` its value, both views into the input. */
export interface DerNode {
  tag: number;
  bytes: Uint8Array;
  content: Uint8Array;
}

/** Thrown for any input that is not strict DER; callers map it to their own error code. */
export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DerError";
  }
}

/** Reads the TLV at `offset`, rejecting indefinite, non-minimal and overlong lengths. */
export function readNode(buf: Uint8Array, offset = 0): DerNode {
  const tag = buf[offset];
  const lenByte = buf[offset + 1];
  if (tag === undefined || lenByte === undefined) throw new DerError("truncated");
  if ((tag & 0x1f) === 0x1f) throw new DerError("high tag numbers are not supported");
  let pos = offset + 2;
  let length = lenByte;
  if (lenByte & 0x80) {
    const count = lenByte & 0x7f;
    if (count === 0 || count > 4) throw new DerError("unsupported length");
    length = 0;
    for (let i = 0; i < count; i++) {
      const b = buf[pos++];
      if (b === undefined) throw new DerError("truncated");
      if (i === 0 && b === 0) throw new DerError("non-minimal length");
      length = length * 256 + b;
    }
    if (length < 0x80) throw new DerError("non-minimal length");
  }
  const end = pos + length;
  if (end > buf.length) throw new DerError("truncated");
  return { tag, bytes: buf.subarray(offset, end), content: buf.subarray(pos, end) };
}

/** Reads exactly one TLV covering all of `buf`. */
export function readOne(buf: Uint8Array, expectTag?: number): DerNode {
  const node = readNode(buf, 0);
  if (node.bytes.length !== buf.length) throw new DerError("trailing data");
  if (expectTag !== undefined && node.tag !== expectTag) throw new DerError(`expected tag ${expectTag}`);
  return node;
}

/** The children of a constructed node. */
export function children(node: DerNode): DerNode[] {
  if ((node.tag & 0x20) === 0) throw new DerError("not a constructed element");
  const out: DerNode[] = [];
  for (let off = 0; off < node.content.length; ) {
    const child = readNode(node.content, off);
    out.push(child);
    off += child.bytes.length;
  }
  return out;
}

/** The children of a constructed node, requiring between `min` and `max` of them. */
export function expectChildren(node: DerNode, min: number, max = min): DerNode[] {
  const kids = children(node);
  if (kids.length < min || kids.length > max) throw new DerError("unexpected element count");
  return kids;
}

export function decodeOid(node: DerNode): string {
  if (node.tag !== TAG.oid || node.content.length === 0) throw new DerError("expected OID");
  const arcs: number[] = [];
  let value = 0;
  for (let i = 0; i < node.content.length; i++) {
    const b = node.content[i] as number;
    if (value === 0 && b === 0x80) throw new DerError("non-minimal OID arc");
    value = value * 128 + (b & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) throw new DerError("OID arc too large");
    if ((b & 0x80) === 0) {
      if (arcs.length === 0) {
        const first = value < 80 ? Math.floor(value / 40) : 2;
        arcs.push(first, value - first * 40);
      } else arcs.push(value);
      value = 0;
    } else if (i === node.content.length - 1) throw new DerError("truncated OID");
  }
  return arcs.join(".");
}

/** BIT STRING content without the unused-bits byte (which must be 0 unless named bits). */
export function decodeBitString(node: DerNode): { unusedBits: number; bytes: Uint8Array } {
  if (node.tag !== TAG.bitString || node.content.length === 0) throw new DerError("expected BIT STRING");
  const unusedBits = node.content[0] as number;
  if (unusedBits > 7 || (unusedBits > 0 && node.content.length === 1)) throw new DerError("bad BIT STRING");
  return { unusedBits, bytes: node.content.subarray(1) };
}

export function decodeBoolean(node: DerNode): boolean {
  if (node.tag !== TAG.boolean || node.content.length !== 1) throw new DerError("expected BOOLEAN");
  const v = node.content[0];
  if (v !== 0 && v !== 0xff) throw new DerError("non-DER BOOLEAN");
  return v === 0xff;
}

const STRING_TAGS: ReadonlySet<number> = new Set([TAG.utf8String, TAG.printableString, TAG.ia5String, 0x14, 0x1e]);

/** Decodes a DirectoryString / IA5String as text (BMPString as UTF-16BE). */
export function decodeString(node: DerNode): string {
  if (!STRING_TAGS.has(node.tag)) throw new DerError("expected a string");
  if (node.tag === 0x1e) {
    if (node.content.length % 2) throw new DerError("odd BMPString");
    let s = "";
    for (let i = 0; i < node.content.length; i += 2) {
      s += String.fromCharCode(((node.content[i] as number) << 8) | (node.content[i + 1] as number));
    }
    return s;
  }
  return new TextDecoder("utf-8", { fatal: true }).decode(node.content);
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}
