import { PosternError } from "../errors.js";

/**
 * A certificate serial as DER encodes it, in lowercase hex: minimal, with a 00 byte before a
 * high first bit. The store, the CRL, the handshake revocation index and identities all key
 * serials this way. `hex` must already be hex digits (as node and openssl print them).
 */
export function canonicalSerial(hex: string): string {
  let out = hex.replace(/:/g, "").toLowerCase();
  if (out.length % 2) out = `0${out}`;
  while (out.startsWith("00") && out.length > 2 && !/^00[89a-f]/.test(out)) out = out.slice(2);
  if (/^[89a-f]/.test(out)) out = `00${out}`;
  return out;
}

/** A serial typed by a person or a client (colons, 0x, either case); `bad-request` if it is not hex. */
export function parseSerial(input: string): string {
  const hex = input.trim().replace(/^0x/i, "").replace(/:/g, "");
  if (!/^[0-9a-fA-F]{1,64}$/.test(hex)) throw new PosternError("bad-request", "serial must be hex");
  return canonicalSerial(hex);
}
