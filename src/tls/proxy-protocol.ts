import { BlockList, isIPv4, isIPv6 } from "node:net";

/**
 * The PROXY protocol (HAProxy, v1 text and v2 binary), by which an L4 load balancer tells the
 * gateway the client's real address before the TLS handshake starts. Parsing is pure: it
 * takes the bytes received so far and says whether the header is complete, what it names,
 * and how many bytes it took.
 */
export type ProxyHeader =
  | { status: "incomplete" }
  | { status: "invalid"; reason: string }
  /** `source` is absent for a LOCAL (health check) or UNKNOWN connection: use the peer's address. */
  | { status: "complete"; length: number; source?: { address: string; port: number } };

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_MAX = 107;

export function parseProxyHeader(bytes: Buffer): ProxyHeader {
  if (bytes.length === 0) return { status: "incomplete" };
  if (bytes[0] === 0x0d) return parseV2(bytes);
  if (bytes[0] === 0x50) return parseV1(bytes);
  return { status: "invalid", reason: "no PROXY protocol header" };
}

function parseV1(bytes: Buffer): ProxyHeader {
  const end = bytes.indexOf("\r\n");
  if (end < 0) return bytes.length >= V1_MAX ? { status: "invalid", reason: "v1 header too long" } : prefixOf(bytes, "PROXY ");
  const line = bytes.subarray(0, end).toString("latin1");
  const parts = line.split(" ");
  if (parts[0] !== "PROXY") return { status: "invalid", reason: "v1 header must start with PROXY" };
  if (parts[1] === "UNKNOWN") return { status: "complete", length: end + 2 };
  if (parts.length !== 6 || (parts[1] !== "TCP4" && parts[1] !== "TCP6")) return { status: "invalid", reason: "malformed v1 header" };
  const [, family, source, , sourcePort] = parts as [string, string, string, string, string, string];
  const validAddress = family === "TCP4" ? isIPv4(source) : isIPv6(source);
  const port = Number(sourcePort);
  if (!validAddress || !/^\d{1,5}$/.test(sourcePort) || port > 65535) return { status: "invalid", reason: "malformed v1 address" };
  return { status: "complete", length: end + 2, source: { address: source, port } };
}

/** Bytes that could still become `prefix` are incomplete; anything else is not a header. */
function prefixOf(bytes: Buffer, prefix: string): ProxyHeader {
  const head = bytes.subarray(0, prefix.length).toString("latin1");
  return prefix.startsWith(head) || head.startsWith(prefix) ? { status: "incomplete" } : { status: "invalid", reason: "no PROXY protocol header" };
}

function parseV2(bytes: Buffer): ProxyHeader {
  const seen = bytes.subarray(0, V2_SIGNATURE.length);
  if (!V2_SIGNATURE.subarray(0, seen.length).equals(seen)) return { status: "invalid", reason: "bad v2 signature" };
  if (bytes.length < 16) return { status: "incomplete" };
  const versionCommand = bytes[12]!;
  if (versionCommand >> 4 !== 2) return { status: "invalid", reason: "unsupported PROXY protocol version" };
  const length = 16 + bytes.readUInt16BE(14);
  if (bytes.length < length) return { status: "incomplete" };
  const command = versionCommand & 0x0f;
  if (command === 0x0) return { status: "complete", length }; // LOCAL
  if (command !== 0x1) return { status: "invalid", reason: "unknown v2 command" };
  const family = bytes[13]! >> 4;
  const body = bytes.subarray(16, length);
  if (family === 0x1 && body.length >= 12) {
    return { status: "complete", length, source: { address: [...body.subarray(0, 4)].join("."), port: body.readUInt16BE(8) } };
  }
  if (family === 0x2 && body.length >= 36) {
    const groups = Array.from({ length: 8 }, (_, i) => body.readUInt16BE(i * 2).toString(16));
    return { status: "complete", length, source: { address: groups.join(":"), port: body.readUInt16BE(32) } };
  }
  return { status: "complete", length }; // UNSPEC or UNIX: no usable address
}

/** Whether `address` is one of the configured senders (addresses or CIDR blocks, IPv4 or IPv6). */
export function trustedSources(entries: readonly string[]): (address: string) => boolean {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, bits] = entry.split("/") as [string, string | undefined];
    const type = isIPv6(address) ? "ipv6" : "ipv4";
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(bits), type);
  }
  return (address) => {
    const plain = address.startsWith("::ffff:") && isIPv4(address.slice(7)) ? address.slice(7) : address;
    return list.check(plain, isIPv6(plain) ? "ipv6" : "ipv4");
  };
}
