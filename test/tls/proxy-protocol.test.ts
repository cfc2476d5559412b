import t from "tap";
import { parseProxyHeader, trustedSources } from "../../src/tls/proxy-protocol.js";

t.test("v1: TCP4, TCP6, UNKNOWN, and what is not a header", async (t) => {
  t.same(parseProxyHeader(Buffer.from("PROXY TCP4 192.0.2.1 10.0.0.1 56324 443\r\nrest")), { status: "complete", length: 41, source: { address: "192.0.2.1", port: 56324 } });
  t.match(parseProxyHeader(Buffer.from("PROXY TCP6 2001:db8::1 2001:db8::2 1 443\r\n")), { status: "complete", source: { address: "2001:db8::1" } });
  t.same(parseProxyHeader(Buffer.from("PROXY UNKNOWN\r\n")), { status: "complete", length: 15 });
  t.same(parseProxyHeader(Buffer.from("PROXY TCP4 192.0.2")), { status: "incomplete" });
  t.same(parseProxyHeader(Buffer.from("PRO")), { status: "incomplete" });
  t.equal(parseProxyHeader(Buffer.from("PROXY TCP4 999.0.0.1 10.0.0.1 1 2\r\n")).status, "invalid");
  t.equal(parseProxyHeader(Buffer.from("PROXY TCP4 1.2.3.4 10.0.0.1 70000 2\r\n")).status, "invalid");
  t.equal(parseProxyHeader(Buffer.from("GET / HTTP/1.1\r\n")).status, "invalid");
  t.equal(parseProxyHeader(Buffer.from([0x16, 0x03, 0x01])).status, "invalid", "a TLS ClientHello is not a header");
  t.equal(parseProxyHeader(Buffer.from("PROXY " + "A".repeat(120))).status, "invalid", "no line end within 107 bytes");
});

t.test("v2: PROXY over IPv4 and IPv6, LOCAL, and partial input", async (t) => {
  const sig = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
  const v4 = Buffer.from([...sig, 0x21, 0x11, 0, 12, 192, 0, 2, 1, 10, 0, 0, 1, 0xdc, 0x04, 0x01, 0xbb, 0x16]);
  t.same(parseProxyHeader(v4), { status: "complete", length: 28, source: { address: "192.0.2.1", port: 0xdc04 } });
  t.same(parseProxyHeader(v4.subarray(0, 20)), { status: "incomplete" });
  const v6 = Buffer.alloc(52);
  Buffer.from([...sig, 0x21, 0x21, 0, 36]).copy(v6);
  v6.writeUInt16BE(0x2001, 16);
  v6.writeUInt16BE(0x0db8, 18);
  v6.writeUInt16BE(7, 30);
  v6.writeUInt16BE(4242, 48);
  t.same(parseProxyHeader(v6), { status: "complete", length: 52, source: { address: "2001:db8:0:0:0:0:0:7", port: 4242 } });
  t.same(parseProxyHeader(Buffer.from([...sig, 0x20, 0x00, 0, 0])), { status: "complete", length: 16 }, "LOCAL: the balancer's own health check");
  t.equal(parseProxyHeader(Buffer.from([...sig, 0x31, 0x11, 0, 0])).status, "invalid", "version 3");
  t.equal(parseProxyHeader(Buffer.from([0x0d, 0x0a, 0x0d, 0x0b])).status, "invalid");
});

t.test("trusted senders: addresses and CIDR blocks, IPv4-mapped IPv6 included", async (t) => {
  const trusted = trustedSources(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]);
  t.ok(trusted("10.1.2.3"));
  t.ok(trusted("::ffff:10.1.2.3"));
  t.ok(trusted("192.0.2.7"));
  t.notOk(trusted("192.0.2.8"));
  t.ok(trusted("2001:db8::1"));
  t.notOk(trusted("2001:db9::1"));
});
