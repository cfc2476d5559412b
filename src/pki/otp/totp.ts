/**
 * One-time codes: HOTP (RFC 4226) and TOTP (RFC 6238) with HMAC-SHA1, 6 digits and 30-second
 * steps, the parameters every authenticator app (and `oathtool --totp`) uses by default. Pure:
 * no clock of its own, no I/O; node:crypto's HMAC does the cryptography.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const TOTP_PERIOD_SECONDS = 30;
export const TOTP_DIGITS = 6;

/** The RFC 4226 code for `counter`, zero-padded to `digits`. */
export function hotp(secret: Uint8Array, counter: number, digits = TOTP_DIGITS): string {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac("sha1", secret).update(message).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 10 ** digits).padStart(digits, "0");
}

/** The RFC 6238 time step of `nowMs`. */
export function totpStep(nowMs: number, periodSeconds = TOTP_PERIOD_SECONDS): number {
  return Math.floor(nowMs / 1000 / periodSeconds);
}

/**
 * The time step whose code `code` is, looking `window` steps either side of now (clock drift
 * between the authenticator and the gateway); undefined when none matches. Every candidate is
 * compared in constant time, so timing does not tell which step came close.
 */
export function matchTotp(secret: Uint8Array, code: string, nowMs: number, window = 1): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined;
  const given = Buffer.from(code);
  const now = totpStep(nowMs);
  let matched: number | undefined;
  for (let step = now - window; step <= now + window; step++) {
    if (timingSafeEqual(Buffer.from(hotp(secret, step)), given) && matched === undefined) matched = step;
  }
  return matched;
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** RFC 4648 base32 without padding: the secret's form in otpauth:// URIs and for `oathtool -b`. */
export function base32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/**
 * The Key Uri Format authenticator apps read (a QR code of it enrolls the app):
 * `otpauth://totp/Postern:<identity>?secret=...&issuer=Postern&algorithm=SHA1&digits=6&period=30`.
 */
export function otpauthUri(secret: Uint8Array, identity: string, issuer = "Postern"): string {
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(identity)}`;
  const query = new URLSearchParams({ secret: base32(secret), issuer, algorithm: "SHA1", digits: String(TOTP_DIGITS), period: String(TOTP_PERIOD_SECONDS) });
  return `otpauth://totp/${label}?${query}`;
}
