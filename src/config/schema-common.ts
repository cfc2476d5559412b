import { isIP } from "node:net";
import { z } from "zod";

/** Building blocks the configuration's schemas share. */
export const port = z.number().int().min(0).max(65535);
export const host = z.string().min(1);

export const listener = (defaultHost: string, defaultPort: number) =>
  z.strictObject({ host: host.default(defaultHost), port: port.default(defaultPort) }).prefault({});

export const nonEmptyName = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "must be 1-64 of [A-Za-z0-9._-]");


/** An IP address or a CIDR block (IPv4 or IPv6). */
export function isIpOrCidr(entry: string): boolean {
  const [address, bits, extra] = entry.split("/");
  if (extra !== undefined || !address || isIP(address) === 0) return false;
  if (bits === undefined) return true;
  const max = isIP(address) === 4 ? 32 : 128;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= max;
}
