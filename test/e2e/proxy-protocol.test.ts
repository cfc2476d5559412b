import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { connect as connectTcp, type Socket } from "node:net";
import { join } from "node:path";
import { connect as connectTls, type TLSSocket } from "node:tls";
import t from "tap";
import type { Logger } from "../../src/log.js";
import { startGateway } from "../helpers/gateway.js";
import { freePort } from "../helpers/net.js";
import { runTool } from "../helpers/process.js";
import { readAnswer, tlsMaterial } from "../helpers/raw-tls.js";

const REQUEST = "GET /nothing HTTP/1.1\r\nhost: localhost\r\n\r\n";

function tcp(port: number, localAddress = "127.0.0.1"): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp({ host: "127.0.0.1", port, localAddress }, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** TLS over a TCP connection that first sent `header` (what a load balancer does). */
async function throughProxy(port: number, header: string | Buffer, material: object, localAddress?: string): Promise<TLSSocket> {
  const socket = await tcp(port, localAddress);
  socket.write(header);
  return new Promise((resolve, reject) => {
    const secure = connectTls({ socket, servername: "localhost", ...material }, () => resolve(secure));
    secure.once("error", reject);
  });
}

function recordingLog(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const record = (message: string, fields: Record<string, unknown> = {}) => void lines.push({ message, ...fields });
  return { log: { info: record, warn: record, error: record }, lines };
}

function v2Header(source: string, sourcePort: number, destPort: number): Buffer {
  const header = Buffer.alloc(28);
  Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]).copy(header);
  header[12] = 0x21; // v2, PROXY
  header[13] = 0x11; // TCP over IPv4
  header.writeUInt16BE(12, 14);
  Buffer.from(source.split(".").map(Number)).copy(header, 16);
  Buffer.from([127, 0, 0, 1]).copy(header, 20);
  header.writeUInt16BE(sourcePort, 24);
  header.writeUInt16BE(destPort, 26);
  return header;
}

t.test("PROXY v1 and v2 from a trusted sender: the client's address counts for the caps", async (t) => {
  const gw = await startGateway({
    tls: { handshakesPerSecondPerAddress: 0 },
    limits: { maxConnectionsPerAddress: 2 },
    listeners: { data: { host: "127.0.0.1", port: 0, proxyProtocol: { trustedSources: ["127.0.0.1/32"] } }, admin: { host: "127.0.0.1", port: 0 }, public: { host: "127.0.0.1", port: 0 } },
  });
  t.teardown(() => gw.stop());
  const material = await tlsMaterial(gw.certs);
  const port = gw.addresses.data.port;
  const v1 = (client: string) => `PROXY TCP4 ${client} 127.0.0.1 40000 ${port}\r\n`;

  const first = await throughProxy(port, v1("198.51.100.7"), material);
  t.equal((await readAnswer(first, REQUEST, 5000)).status, 404, "served after a v1 header");
  const held = [await throughProxy(port, v1("198.51.100.7"), material), await throughProxy(port, v2Header("198.51.100.7", 40001, port), material)];
  t.teardown(() => held.forEach((s) => s.destroy()));
  await t.rejects(throughProxy(port, v1("198.51.100.7"), material), "a third connection from the same client address is refused");
  const other = await throughProxy(port, v2Header("198.51.100.8", 40002, port), material);
  t.equal((await readAnswer(other, REQUEST, 5000)).status, 404, "another client behind the same balancer is served");
  const metrics = await (await fetch(`${gw.publicUrl}/metrics`)).text();
  t.match(metrics, /postern_connections_refused_total\{reason="address_limit"\} 1/);

  const untrusted = await tcp(port, "127.0.0.2");
  const direct = await new Promise<TLSSocket>((resolve, reject) => {
    const s = connectTls({ socket: untrusted, servername: "localhost", ...material }, () => resolve(s));
    s.once("error", reject);
  });
  t.equal((await readAnswer(direct, REQUEST, 5000)).status, 404, "a sender that is not trusted is served as a direct client");
  await t.rejects(
    new Promise((resolve, reject) => {
      const s = connectTls({ host: "127.0.0.1", port, servername: "localhost", ...material }, () => resolve(s));
      s.once("error", reject);
    }),
    "a trusted sender must send the header",
  );
});

t.test("through HAProxy (send-proxy-v2): refusals are limited and logged by the original address", async (t) => {
  if ((await runTool("haproxy", ["-v"])).code !== 0) {
    t.comment("SKIPPED: haproxy is not installed (Debian package haproxy; .ci/run installs it)");
    t.pass("skipped: no haproxy", { skip: "haproxy is not installed" });
    return;
  }
  const { log, lines } = recordingLog();
  const gw = await startGateway(
    {
      tls: { handshakesPerSecondPerAddress: 0 },
      limits: { maxConnectionsPerAddress: 1 },
      listeners: { data: { host: "127.0.0.1", port: 0, proxyProtocol: { trustedSources: ["127.0.0.1"] } }, admin: { host: "127.0.0.1", port: 0 }, public: { host: "127.0.0.1", port: 0 } },
    },
    { log },
  );
  t.teardown(() => gw.stop());
  const dir = await gw.workDir();
  const front = await freePort();
  await writeFile(
    join(dir, "haproxy.cfg"),
    [
      "global",
      "  maxconn 100",
      "defaults",
      "  mode tcp",
      "  timeout connect 5s",
      "  timeout client 30s",
      "  timeout server 30s",
      "frontend gw",
      `  bind 127.0.0.1:${front}`,
      "  default_backend postern",
      "backend postern",
      `  server gw 127.0.0.1:${gw.addresses.data.port} send-proxy-v2`,
      "",
    ].join("\n"),
  );
  const haproxy = spawn("haproxy", ["-db", "-f", join(dir, "haproxy.cfg")], { stdio: "ignore" });
  t.teardown(() => void haproxy.kill("SIGTERM"));
  const material = await tlsMaterial(gw.certs);
  const viaHaproxy = async (localAddress: string, options: object = material) => {
    const socket = await tcp(front, localAddress);
    return new Promise<TLSSocket>((resolve, reject) => {
      const s = connectTls({ socket, servername: "localhost", ...options }, () => resolve(s));
      s.once("error", reject);
    });
  };
  let first: TLSSocket | undefined;
  for (let i = 0; i < 50 && !first; i++) first = await viaHaproxy("127.0.0.5").catch(() => new Promise<undefined>((r) => setTimeout(r, 100)));
  t.ok(first, "connected through HAProxy");
  t.equal((await readAnswer(first!, REQUEST, 5000)).status, 404);
  const held = await viaHaproxy("127.0.0.5");
  t.teardown(() => held.destroy());
  const second = await viaHaproxy("127.0.0.5").catch(() => undefined);
  const answer = second ? await readAnswer(second, REQUEST, 3000) : { status: 0 };
  t.equal(answer.status, 0, "a second connection from 127.0.0.5 is refused, though HAProxy's own address is the peer");
  const fromSix = await viaHaproxy("127.0.0.6");
  t.equal((await readAnswer(fromSix, REQUEST, 5000)).status, 404, "127.0.0.6 is served");

  const anonymous = await viaHaproxy("127.0.0.7", { ca: material.ca });
  await readAnswer(anonymous, REQUEST, 3000);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const refused = lines.find((l) => l.message === "handshake refused" && l.reason === "no_cert");
  t.equal(refused?.remote, "127.0.0.7", "the refused handshake is logged with the client's own address");
});
