/**
 * Minimal, strict DER encoding and decoding (ITU-T X.690) for the structures the PKI builds and
 * reads on hot paths: TBSCertificate, CSR, PKCS#12, CRL (100k entries), OCSP framing. It only
 * frames bytes: no cryptography and no I/O happen here. Generic ASN.1 libraries cost
 * milliseconds per certificate and are O(n^2) on large CRLs (DEPENDENCIES.md pitfall 4); this
 * costs microseconds. Writer and reader share one file (over ~250 lines) because they share
 * the tag table and the length rules, which must agree.
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
  enumerated: 0x0a,
  utf8String: 0x0c,
  printableString: 0x13,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

/**
 * One TLV whose content is the concatenation of `parts`, in a single allocation (fresh memory,
 * never the Buffer pool: pitfall 7). Takes an array because spreading 100k CRL entries as
 * arguments would overflow the stack. Throws RangeError above 4 GiB of content.
 */
export function tlvOf(tag: number, parts: readonly Uint8Array[]): Bytes {
  let total = 0;
  for (const p of parts) total += p.length;
  if (total > 0xffffffff) throw new RangeError("DER element too large");
  const lengthOctets = total < 0x80 ? 0 : total < 0x100 ? 1 : total < 0x10000 ? 2 : total < 0x1000000 ? 3 : 4;
  const out = new Uint8Array(2 + lengthOctets + total);
  out[0] = tag;
  if (lengthOctets === 0) out[1] = total;
  else {
    out[1] = 0x80 | lengthOctets;
    for (let i = lengthOctets, n = total; i > 0; i--, n = Math.floor(n / 256)) out[1 + i] = n & 0xff;
  }
  let offset = 2 + lengthOctets;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** `tlvOf` for a handful of parts given as arguments. */
export const tlv = (tag: number, ...parts: Uint8Array[]): Bytes => tlvOf(tag, parts);
export const seq = (...items: Uint8Array[]): Bytes => tlvOf(TAG.sequence, items);
export const set = (...items: Uint8Array[]): Bytes => tlvOf(TAG.set, items);
export const octets = (bytes: Uint8Array): Bytes => tlvOf(TAG.octetString, [bytes]);
export const utf8 = (s: string): Bytes => tlvOf(TAG.utf8String, [new TextEncoder().encode(s)]);
/** IA5String; throws RangeError unless `s` is printable ASCII. */
export const ia5 = (s: string): Bytes => tlvOf(TAG.ia5String, [asciiBytes(s)]);
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
  // A set top bit would read as negative: DER needs a leading zero byte.
  const pad = ((trimmed[0] ?? 0) & 0x80) !== 0 || trimmed.length === 0;
  return pad ? tlvOf(TAG.integer, [Uint8Array.of(0), trimmed]) : tlvOf(TAG.integer, [trimmed]);
}

/** A non-negative INTEGER, minimally encoded. Throws RangeError on negative or non-integral values. */
export function uint(n: number | bigint): Bytes {
  if (typeof n === "number" ? !Number.isSafeInteger(n) || n < 0 : n < 0n) {
    throw new RangeError("INTEGER must be a non-negative whole number");
  }
  const bytes: number[] = [];
  for (let v = BigInt(n); v > 0n; v >>= 8n) bytes.unshift(Number(v & 0xffn));
  return uintFromBytes(Uint8Array.from(bytes));
}

/**
 * INTEGER whose content is exactly the given hex bytes: a certificate's serialNumber as
 * encoded in the certificate (no normalisation, pitfall 6). Throws RangeError on odd, empty
 * or non-hex input.
 */
export function integerFromHex(hex: string): Bytes {
  if (typeof hex !== "string" || hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex)) {
    throw new RangeError("expected non-empty even-length hex");
  }
  // Buffer.from may share the 8 KiB pool; tlvOf copies it out at once (pitfall 7).
  return tlvOf(TAG.integer, [Buffer.from(hex, "hex")]);
}

/** BIT STRING with no unused bits (keys, signatures). */
export const bitString = (bytes: Uint8Array): Bytes => tlvOf(TAG.bitString, [Uint8Array.of(0), bytes]);

/** Named-bit BIT STRING (e.g. KeyUsage): bit 0 is the most significant bit of the first byte. */
export function namedBits(bits: readonly number[]): Bytes {
  const highest = Math.max(...bits);
  const bytes = new Uint8Array(Math.floor(highest / 8) + 1);
  for (const b of bits) bytes[b >> 3] = (bytes[b >> 3] ?? 0) | (0x80 >> (b & 7));
  const unused = 7 - (highest & 7);
  return tlvOf(TAG.bitString, [Uint8Array.of(unused), bytes]);
}

const oidCache = new Map<string, Bytes>();
const OID_TEXT = /^[0-2](\.(0|[1-9][0-9]*))+$/;

/**
 * OBJECT IDENTIFIER from dotted text (arcs of any size). Cached since the same few constant
 * OIDs repeat: the returned bytes are shared and must not be modified. Throws RangeError on
 * malformed text.
 */
export function oid(dotted: string): Bytes {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  if (!OID_TEXT.test(dotted)) throw new RangeError(`bad OID ${dotted}`);
  const [a0, a1, ...rest] = dotted.split(".").map((a) => BigInt(a));
  if (a0 === undefined || a1 === undefined || (a0 < 2n && a1 >= 40n)) throw new RangeError(`bad OID ${dotted}`);
  const body: number[] = [];
  for (const arc of [a0 * 40n + a1, ...rest]) {
    const chunk: number[] = [Number(arc & 0x7fn)];
    for (let v = arc >> 7n; v > 0n; v >>= 7n) chunk.unshift(Number(v & 0x7fn) | 0x80);
    body.push(...chunk);
  }
  const encoded = tlvOf(TAG.oid, [Uint8Array.from(body)]);
  oidCache.set(dotted, encoded);
  return encoded;
}

function putDigits(out: Uint8Array, at: number, value: number, width: number): void {
  for (let i = width - 1; i >= 0; i--) {
    out[at + i] = 0x30 + (value % 10);
    value = Math.floor(value / 10);
  }
}

/**
 * RFC 5280 Time (§4.1.2.5, §5.1.2.4): UTCTime for 1950-2049, GeneralizedTime otherwise, whole
 * seconds, "Z". Throws RangeError on an invalid date or a year outside 0-9999. Written digit
 * by digit, as it runs once per CRL entry.
 */
export function time(ms: number): Bytes {
  const d = new Date(Math.floor(ms / 1000) * 1000);
  if (Number.isNaN(d.getTime())) throw new RangeError("invalid time");
  const year = d.getUTCFullYear();
  if (year < 0 || year > 9999) throw new RangeError("time out of range");
  const utc = year >= 1950 && year < 2050;
  const yearWidth = utc ? 2 : 4;
  const out = new Uint8Array(2 + yearWidth + 11);
  out[0] = utc ? TAG.utcTime : TAG.generalizedTime;
  out[1] = yearWidth + 11;
  putDigits(out, 2, utc ? year % 100 : year, yearWidth);
  const at = 2 + yearWidth;
  putDigits(out, at, d.getUTCMonth() + 1, 2);
  putDigits(out, at + 2, d.getUTCDate(), 2);
  putDigits(out, at + 4, d.getUTCHours(), 2);
  putDigits(out, at + 6, d.getUTCMinutes(), 2);
  putDigits(out, at + 8, d.getUTCSeconds(), 2);
  out[at + 10] = 0x5a; // "Z"
  return out;
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

/** Lowercase hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}
