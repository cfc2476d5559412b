/**
 * A minimal DER writer for the few structures Postern builds by hand (CRLs). Hand-written
 * because asn1js serialisation is too slow for CRLs with 100k entries (DEPENDENCIES.md
 * pitfall 4). Pure functions over bytes, no I/O.
 */

/** Encodes a DER length (definite form; long form above 127). */
export function derLength(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Uint8Array.from([0x80 | bytes.length, ...bytes]);
}

/** Concatenates byte arrays without the Buffer pool (see pitfall 7). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
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

/** Encodes one TLV whose content is the concatenation of `parts`. */
export function derTlv(tag: number, ...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  return derTlvOf(tag, parts);
}

/** `derTlv` over an array: spreading 100k CRL entries as arguments would overflow the stack. */
export function derTlvOf(tag: number, parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  let total = 0;
  for (const p of parts) total += p.length;
  const length = derLength(total);
  // One allocation per element: this runs once per CRL entry.
  const out = new Uint8Array(1 + length.length + total);
  out[0] = tag;
  out.set(length, 1);
  let offset = 1 + length.length;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** SEQUENCE of already encoded elements. */
export function derSequence(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  return derTlvOf(0x30, parts);
}

/** OCTET STRING wrapping `content` (extension values). */
export function derOctetString(content: Uint8Array): Uint8Array {
  return derTlv(0x04, content);
}

/** BIT STRING with zero unused bits (signatures). */
export function derBitString(content: Uint8Array): Uint8Array {
  return derTlv(0x03, Uint8Array.of(0), content);
}

/** Encodes a dotted OID. */
export function derOid(oid: string): Uint8Array {
  const arcs = oid.split(".").map((a) => BigInt(a));
  const [first, second, ...rest] = arcs;
  if (first === undefined || second === undefined) throw new RangeError(`bad OID ${oid}`);
  const body: number[] = [];
  for (const arc of [first * 40n + second, ...rest]) {
    const chunk: number[] = [Number(arc & 0x7fn)];
    for (let v = arc >> 7n; v > 0n; v >>= 7n) chunk.unshift(Number(v & 0x7fn) | 0x80);
    body.push(...chunk);
  }
  return derTlv(0x06, Uint8Array.from(body));
}

/** INTEGER from a non-negative bigint, minimal two's complement form. */
export function derIntegerFromBigInt(value: bigint): Uint8Array {
  if (value < 0n) throw new RangeError("negative INTEGER not supported");
  let hex = value.toString(16);
  if (hex.length % 2 === 1) hex = "0" + hex;
  // A set top bit would read as negative: DER needs a leading zero byte.
  if (parseInt(hex.slice(0, 2), 16) >= 0x80) hex = "00" + hex;
  return derTlv(0x02, hexToBytes(hex));
}

/**
 * INTEGER whose content is exactly the given hex bytes: a certificate's serialNumber as
 * encoded in the certificate (no normalisation, pitfall 6). Refuses odd or empty hex.
 */
export function derIntegerFromHex(hex: string): Uint8Array<ArrayBuffer> {
  checkHex(hex);
  // Buffer.from may share the 8 KiB pool; derTlvOf copies it out at once (pitfall 7).
  return derTlvOf(0x02, [Buffer.from(hex, "hex")]);
}

/** Lowercase hex of bytes. */
export function bytesToHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

/** Parses even-length hex; throws RangeError on anything else. */
export function hexToBytes(hex: string): Uint8Array<ArrayBuffer> {
  checkHex(hex);
  return new Uint8Array(Buffer.from(hex, "hex"));
}

function checkHex(hex: string): void {
  if (typeof hex !== "string" || hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex)) {
    throw new RangeError("expected non-empty even-length hex");
  }
}

function putDigits(out: Uint8Array, at: number, value: number, width: number): void {
  for (let i = width - 1; i >= 0; i--) {
    out[at + i] = 0x30 + (value % 10);
    value = Math.floor(value / 10);
  }
}

/**
 * RFC 5280 Time: UTCTime for 1950-2049, GeneralizedTime otherwise, whole seconds, "Z".
 * Written digit by digit, as it runs once per CRL entry.
 */
export function derTime(ms: number): Uint8Array<ArrayBuffer> {
  const d = new Date(Math.floor(ms / 1000) * 1000);
  if (Number.isNaN(d.getTime())) throw new RangeError("invalid time");
  const year = d.getUTCFullYear();
  if (year < 0 || year > 9999) throw new RangeError("time out of range");
  const utc = year >= 1950 && year < 2050;
  const yearWidth = utc ? 2 : 4;
  const out = new Uint8Array(2 + yearWidth + 11);
  out[0] = utc ? 0x17 : 0x18;
  out[1] = yearWidth + 11;
  putDigits(out, 2, utc ? year % 100 : year, yearWidth);
  let at = 2 + yearWidth;
  for (const part of [d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]) {
    putDigits(out, at, part, 2);
    at += 2;
  }
  out[at] = 0x5a; // "Z"
  return out;
}

/** A DER element read by `readDerElement`. */
export interface DerElement {
  tag: number;
  /** Offset of the content inside the input. */
  contentStart: number;
  contentEnd: number;
  /** Offset just past the element. */
  end: number;
}

/** Reads one element header at `offset` (definite lengths only, as DER requires). */
export function readDerElement(bytes: Uint8Array, offset: number): DerElement {
  const tag = bytes[offset];
  let lenByte = bytes[offset + 1];
  if (tag === undefined || lenByte === undefined) throw new RangeError("truncated DER");
  let length = 0;
  let contentStart = offset + 2;
  if (lenByte >= 0x80) {
    const count = lenByte & 0x7f;
    if (count === 0 || count > 4) throw new RangeError("unsupported DER length");
    for (let i = 0; i < count; i++) {
      lenByte = bytes[contentStart + i];
      if (lenByte === undefined) throw new RangeError("truncated DER");
      length = length * 256 + lenByte;
    }
    contentStart += count;
  } else {
    length = lenByte;
  }
  const contentEnd = contentStart + length;
  if (contentEnd > bytes.length) throw new RangeError("truncated DER");
  return { tag, contentStart, contentEnd, end: contentEnd };
}
