import { connect as connectTcp, type Socket } from "node:net";
import t from "tap";
import { startGateway } from "../helpers/gateway.js";
import { openTls, readAnswer, tlsMaterial } from "../helpers/raw-tls.js";

function tcp(port: number, localAddress = "127.0.0.1"): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp({ host: "127.0.0.1", port, localAddress }, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Resolves true when the server closes the socket within `ms`. */
function closedWithin(socket: Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    socket.on("error", () => undefined);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function refusedReasons(publicUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${publicUrl}/metrics`)).text();
  return Object.fromEntries([...text.matchAll(/postern_connections_refused_total\{reason="([a-z_]+)"\} (\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
}

t.test("one source address cannot hold more than maxConnectionsPerAddress; other addresses still get in", async (t) => {
  const gw = await startGateway({ tls: { handshakesPerSecondPerAddress: 0 }, limits: { maxConnectionsPerAddress: 5 } });
  t.teardown(() => gw.stop());
  const port = gw.addresses.data.port;
  const held = await Promise.all(Array.from({ length: 5 }, () => tcp(port, "127.0.0.2")));
  t.teardown(() => held.forEach((s) => s.destroy()));
  const sixth = await tcp(port, "127.0.0.2");
  t.ok(await closedWithin(sixth, 5000), "the sixth connection from 127.0.0.2 is closed at once");
  t.notOk(await closedWithin(held[0]!, 300), "the first five stay open");
  const client = await gw.client();
  t.equal((await client.send("/v1/messages/cap", "{}")).status, 202, "a client from another address is served");
  t.equal((await refusedReasons(gw.publicUrl)).address_limit, 1);
  held[0]!.destroy();
  await new Promise((resolve) => setTimeout(resolve, 200));
  const again = await tcp(port, "127.0.0.2");
  t.notOk(await closedWithin(again, 300), "a freed slot can be used again");
  again.destroy();
});

t.test("one identity cannot hold more than maxConnectionsPerIdentity", async (t) => {
  const gw = await startGateway({ tls: { handshakesPerSecondPerAddress: 0 }, limits: { maxConnectionsPerIdentity: 3 } });
  t.teardown(() => gw.stop());
  const material = await tlsMaterial(gw.certs);
  const held = await Promise.all(Array.from({ length: 3 }, () => openTls(gw.addresses.data.port, material)));
  t.teardown(() => held.forEach((s) => s.destroy()));
  const fourth = await openTls(gw.addresses.data.port, material);
  t.ok(await closedWithin(fourth, 5000), "the fourth connection of the demo identity is closed");
  const admin = await openTls(gw.addresses.data.port, await tlsMaterial(gw.certs, "admin"));
  t.notOk(await closedWithin(admin, 300), "another identity still gets in");
  admin.destroy();
  t.equal((await refusedReasons(gw.publicUrl)).identity_limit, 1);
});

t.test("the admin listener limits clients without a certificate hardest", async (t) => {
  const gw = await startGateway({
    tls: { handshakesPerSecondPerAddress: 0 },
    limits: { maxAnonymousConnectionsPerAddress: 2, maxAnonymousConnections: 3 },
  });
  t.teardown(() => gw.stop());
  const port = gw.addresses.admin.port;
  const { ca } = await tlsMaterial(gw.certs);
  const anonymous = (localAddress: string) => openTls(port, { ca, localAddress, servername: "localhost" });
  const held = [await anonymous("127.0.0.2"), await anonymous("127.0.0.2")];
  t.teardown(() => held.forEach((s) => s.destroy()));
  t.ok(await closedWithin(await anonymous("127.0.0.2"), 5000), "a third anonymous connection from one address is closed");
  held.push(await anonymous("127.0.0.3"));
  t.ok(await closedWithin(await anonymous("127.0.0.4"), 5000), "past maxAnonymousConnections in all, any address is closed");
  const admin = await openTls(port, await tlsMaterial(gw.certs, "admin"));
  const answer = await readAnswer(admin, "GET /v1/certificates?limit=1 HTTP/1.1\r\nhost: localhost\r\n\r\n", 5000);
  t.equal(answer.status, 200, "an admin with a certificate is not limited by the anonymous caps");
  const reasons = await refusedReasons(gw.publicUrl);
  t.equal(reasons.anonymous_limit, 2);
});

t.test("timeouts are enforced on a connection that completed its handshake", async (t) => {
  const gw = await startGateway({
    tls: { handshakesPerSecondPerAddress: 0 },
    limits: { headersTimeoutSeconds: 1, requestTimeoutSeconds: 2, keepAliveTimeoutSeconds: 1 },
  });
  t.teardown(() => gw.stop());
  const material = await tlsMaterial(gw.certs);
  const port = gw.addresses.data.port;

  const silent = await openTls(port, material);
  const idle = await readAnswer(silent, undefined, 20_000);
  t.equal(idle.status, 408, "no request at all: 408 after headersTimeoutSeconds, then closed");
  t.equal(JSON.parse(idle.body).code, "request-timeout");

  const admin = await openTls(gw.addresses.admin.port, { ca: material.ca, servername: "localhost" });
  t.equal((await readAnswer(admin, undefined, 20_000)).status, 408, "the admin listener too, for an anonymous client");

  const keptAlive = await openTls(port, material);
  const answered = new Promise<string>((resolve) => keptAlive.once("data", (d) => resolve(String(d))));
  keptAlive.write("GET /nothing HTTP/1.1\r\nhost: localhost\r\n\r\n");
  t.match(await answered, /^HTTP\/1\.1 404/);
  t.ok(await closedWithin(keptAlive, 20_000), "an idle keep-alive connection is closed after keepAliveTimeoutSeconds");
});
