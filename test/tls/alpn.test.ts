import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, createServer, type Server, type TLSSocket } from "node:tls";
import { promisify } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import t from "tap";
import { alpnOptions, hasAlpnCallback } from "../../src/tls/server-options.js";

const run = promisify(execFile);
const dir = await mkdtemp(join(tmpdir(), "postern-alpn-"));
t.teardown(() => rm(dir, { recursive: true, force: true }));
await run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-subj", "/CN=localhost", "-days", "2", "-addext", "subjectAltName=DNS:localhost"]);
const key = await readFile(join(dir, "key.pem"));
const cert = await readFile(join(dir, "cert.pem"));

const variants = hasAlpnCallback() ? [true, false] : [false];

async function listen(callbacks: boolean, onSocket: (socket: TLSSocket) => void = (s) => s.end()): Promise<{ server: Server; port: number }> {
  const server = createServer({ key, cert, ...alpnOptions(["h2", "http/1.1"], callbacks) }, onSocket);
  server.on("tlsClientError", () => undefined);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as { port: number }).port };
}

/** The protocol a client offering `offer` ends up with, or the handshake's error code. */
function negotiate(port: number, offer: string[] | undefined): Promise<string | false> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1", servername: "localhost", ca: cert, ...(offer ? { ALPNProtocols: offer } : {}) }, () => {
      resolve(socket.alpnProtocol ?? false);
      socket.end();
    });
    socket.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

t.test("the Node versions that take ALPNCallback", async (t) => {
  t.equal(hasAlpnCallback("20.15.1"), false);
  t.equal(hasAlpnCallback("20.16.0"), true);
  t.equal(hasAlpnCallback("21.7.3"), false);
  t.equal(hasAlpnCallback("22.3.0"), false);
  t.equal(hasAlpnCallback("22.4.0"), true);
  t.equal(hasAlpnCallback("24.0.0"), true);
});

for (const callbacks of variants) {
  t.test(`ALPN by ${callbacks ? "callback" : "ALPNProtocols"}: the server's preference among what the client offers, an alert when none fits`, async (t) => {
    const { server, port } = await listen(callbacks);
    t.teardown(() => server.close());
    t.equal(await negotiate(port, ["http/1.1", "h2"]), "h2", "the server's first choice wins");
    t.equal(await negotiate(port, ["http/1.1"]), "http/1.1");
    t.equal(await negotiate(port, undefined), false, "no ALPN offered: none negotiated, the connection goes on");
    t.match(await negotiate(port, ["spdy/3.1"]), /NO_APPLICATION_PROTOCOL/, "nothing in common: a fatal no_application_protocol alert");
  });
}

t.test("idle connections do not each keep a pool slab alive through the ALPN list", { skip: hasAlpnCallback() ? false : "this Node has no ALPNCallback" }, async (t) => {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  /** ArrayBuffer bytes held after opening `count` idle connections, with pool allocations in between (as a request makes). */
  async function heldBy(callbacks: boolean, count: number): Promise<number> {
    const held: TLSSocket[] = [];
    const { server, port } = await listen(callbacks, (s) => held.push(s));
    const clients: TLSSocket[] = [];
    gc();
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < count; i++) {
      clients.push(await new Promise<TLSSocket>((resolve, reject) => {
        const c = connect({ port, host: "127.0.0.1", servername: "localhost", ca: cert, ALPNProtocols: ["http/1.1"] }, () => resolve(c)).on("error", reject);
      }));
      for (let j = 0; j < 4; j++) Buffer.from("x".repeat(3000)); // a request's worth of pooled buffers
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    gc();
    const after = process.memoryUsage().arrayBuffers;
    for (const c of clients) c.destroy();
    for (const s of held) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return after - before;
  }
  const copied = await heldBy(false, 200);
  const chosen = await heldBy(true, 200);
  t.comment(`ArrayBuffer bytes held per idle connection: ALPNProtocols ${Math.round(copied / 200)}, callback ${Math.round(chosen / 200)}`);
  t.ok(copied / 200 > 4096, "(the defect: with ALPNProtocols each connection holds most of a slab)");
  t.ok(chosen / 200 < 1024, "with the callback a connection holds none");
});
