import { writeFile } from "node:fs/promises";
import { connect, constants } from "node:http2";
import { createServer, type AddressInfo } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { join } from "node:path";
import t from "tap";
import { startGateway } from "../helpers/gateway.js";
import { runTool } from "../helpers/process.js";
import { tlsMaterial } from "../helpers/raw-tls.js";

const gatewayConfig = { tls: { handshakesPerSecondPerAddress: 0 } };

t.test("curl --http2 with a client certificate gets a 202 for a signed message over h2", async (t) => {
  const gw = await startGateway(gatewayConfig);
  t.teardown(() => gw.stop());
  const signer = await gw.client();
  const message = signer.prepare("/v1/messages/h2", '{"over":"h2"}');
  const dir = await gw.workDir();
  await writeFile(join(dir, "body.json"), message.body);
  const headerFlags = Object.entries(message.headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
  const curl = await runTool("curl", [
    "-sS", "--http2", "-w", "\n%{http_version} %{http_code}",
    "--cert", join(gw.certs, "demo-client.crt"), "--key", join(gw.certs, "demo-client.key"), "--cacert", gw.caBundle,
    ...headerFlags, "--data-binary", `@${join(dir, "body.json")}`, message.url,
  ]);
  t.equal(curl.code, 0, curl.stderr);
  const [body, status] = curl.stdout.split("\n");
  t.equal(status, "2 202", "HTTP/2, 202");
  t.match(JSON.parse(body!), { route: "messages" });
  const again = await runTool("curl", [
    "-sS", "--http2", "-o", "/dev/null", "-w", "%{http_code}",
    "--cert", join(gw.certs, "demo-client.crt"), "--key", join(gw.certs, "demo-client.key"), "--cacert", gw.caBundle,
    ...headerFlags, "--data-binary", `@${join(dir, "body.json")}`, message.url,
  ]);
  t.equal(again.stdout, "409", "the same bytes again over h2: replayed");
});

t.test("the client library over HTTP/2: many distinct messages on one connection, each accepted once", async (t) => {
  const gw = await startGateway(gatewayConfig);
  t.teardown(() => gw.stop());
  const client = await gw.client("demo-client", { http2: true, connections: 1 });
  const results = await Promise.all(Array.from({ length: 300 }, (_, i) => client.send(`/v1/messages/h2-${i % 7}`, JSON.stringify({ i }))));
  t.ok(results.every((r) => r.status === 202 && !r.duplicate));
  t.equal(new Set(results.map((r) => r.id)).size, 300);
  const metrics = await (await fetch(`${gw.publicUrl}/metrics`)).text();
  t.match(metrics, /postern_tls_handshakes_total 1\n/, "one connection carried them all");
});

t.test("h2load: a bounded load over HTTP/2 gets answers, no errors (one 202, the rest replays)", async (t) => {
  const probe = await runTool("h2load", ["--version"]);
  if (probe.code !== 0) {
    t.comment("SKIPPED: h2load is not installed (Debian package nghttp2-client; .ci/run installs it)");
    t.pass("skipped: no h2load", { skip: "h2load is not installed" });
    return;
  }
  const gw = await startGateway(gatewayConfig);
  t.teardown(() => gw.stop());
  const signer = await gw.client();
  const message = signer.prepare("/v1/messages/h2load", '{"load":1}');
  const dir = await gw.workDir();
  await writeFile(join(dir, "body.json"), message.body);
  // h2load cannot present a client certificate: a relay (no Postern code) adds mTLS, the way a
  // sidecar would. h2load speaks h2c to it; the relay speaks h2 over mTLS to the gateway.
  const material = await tlsMaterial(gw.certs);
  const relay = createServer((plain) => {
    const secure = tlsConnect({ host: "127.0.0.1", port: gw.addresses.data.port, servername: "localhost", ALPNProtocols: ["h2"], ...material });
    plain.pipe(secure).pipe(plain);
    plain.on("error", () => secure.destroy());
    secure.on("error", () => plain.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
  t.teardown(() => relay.close());
  const url = new URL(message.url);
  const load = await runTool("h2load", [
    "-n", "2000", "-c", "4", "-m", "32",
    "-H", `:authority: ${url.host}`,
    ...Object.entries(message.headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]),
    "-d", join(dir, "body.json"), `http://127.0.0.1:${(relay.address() as AddressInfo).port}${url.pathname}`,
  ]);
  t.equal(load.code, 0, load.stderr);
  // h2load counts any 4xx as "failed"; "errored" and "timeout" are the protocol-level failures.
  t.match(load.stdout, /requests: 2000 total, 2000 started, 2000 done, 1 succeeded, 1999 failed, 0 errored, 0 timeout/);
  t.match(load.stdout, /status codes: 1 2xx, 0 3xx, 1999 4xx, 0 5xx/, "one accepted, every copy refused as a replay");
  t.match(load.stdout, /Application protocol: h2c/, "h2 all the way (h2c to the relay)");
});

t.test("over h2: header rules hold, and revoking the certificate ends the whole session", async (t) => {
  const gw = await startGateway(gatewayConfig);
  t.teardown(() => gw.stop());
  const material = await tlsMaterial(gw.certs);
  const session = connect(gw.dataUrl, { ...material, servername: "localhost" });
  session.on("error", () => undefined);
  const ask = (headers: Record<string, string>) =>
    new Promise<number>((resolve) => {
      const stream = session.request(headers);
      stream.on("response", (h) => resolve(Number(h[":status"])));
      stream.on("error", () => resolve(0));
      stream.end();
    });
  t.equal(await ask({ ":method": "GET", ":path": "/nothing" }), 404, "served over h2");
  const mismatch = await ask({ ":method": "GET", ":path": "/nothing", ":authority": `localhost:${gw.addresses.data.port}`, host: "other.example" });
  t.equal(mismatch, 400, ":authority and Host must agree");

  const closed = new Promise((resolve) => session.once("close", resolve));
  const admin = await gw.adminClient();
  await admin.call("POST", "/v1/identities/revoke", { identity: "spiffe://postern.local/client/demo", reason: "keyCompromise" });
  t.ok(await Promise.race([closed.then(() => true), new Promise((r) => setTimeout(() => r(false), 10_000))]), "the session is closed");
});

t.test("an RST_STREAM flood ends that session, and others are still served", async (t) => {
  const gw = await startGateway(gatewayConfig);
  t.teardown(() => gw.stop());
  const material = await tlsMaterial(gw.certs);
  const flooder = connect(gw.dataUrl, { ...material, servername: "localhost" });
  flooder.on("error", () => undefined);
  const ended = new Promise((resolve) => flooder.once("close", resolve));
  for (let i = 0; i < 20_000 && !flooder.destroyed && !flooder.closed; i++) {
    const stream = flooder.request({ ":method": "POST", ":path": "/v1/messages/flood" });
    stream.on("error", () => undefined);
    stream.close(constants.NGHTTP2_CANCEL);
    if (i % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  t.ok(await Promise.race([ended.then(() => true), new Promise((r) => setTimeout(() => r(false), 15_000))]), "the flooding session was ended");
  const client = await gw.client("demo-client", { http2: true });
  t.equal((await client.send("/v1/messages/after-flood", "{}")).status, 202, "another client is served");
});
