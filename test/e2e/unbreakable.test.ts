import { spawn } from "node:child_process";
import { join } from "node:path";
import t from "tap";
import { createContentDigest } from "../../src/signing/index.js";
import { startGateway } from "../helpers/gateway.js";
import { startGatewayProcess } from "../helpers/gateway-process.js";
import { finished } from "../helpers/process.js";
import { openTls, rawExchange, readAnswer, tlsMaterial } from "../helpers/raw-tls.js";
import { signRawRequest } from "../helpers/signed-raw.js";

function curl(args: string[], stdin?: Buffer): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn("curl", args, { stdio: ["pipe", "pipe", "pipe"] });
  const result = finished(child);
  child.stdin.on("error", () => undefined);
  child.stdin.end(stdin);
  return result;
}

t.test("finding 1: a chunked body over the route limit gets 413 and the process keeps serving", async (t) => {
  const gw = await startGatewayProcess(t);
  const certFlags = ["--cert", join(gw.certs, "demo-client.crt"), "--key", join(gw.certs, "demo-client.key"), "--cacert", join(gw.certs, "ca-bundle.pem")];
  for (let round = 1; round <= 3; round++) {
    const answer = await curl(
      ["-sS", "-o", "/dev/null", "-w", "%{http_code}", ...certFlags, "-H", "content-type: application/json", "-H", "Transfer-Encoding: chunked", "--data-binary", "@-", `https://127.0.0.1:${gw.dataPort}/v1/messages/x`],
      Buffer.alloc(1_048_577),
    );
    t.equal(answer.stdout, "413", `round ${round}: 413`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    t.equal(gw.child.exitCode, null, `round ${round}: the gateway is still running`);
  }
  const health = await fetch(`http://127.0.0.1:${gw.publicPort}/healthz`);
  t.equal(health.status, 200);
  const sent = await curl(["-sS", "-w", "\n%{http_code}", ...certFlags, "-H", "content-type: application/json", "--data-binary", "{}", `https://localhost:${gw.dataPort}/v1/messages/x`]);
  t.match(sent.stdout, /\n400$/, "a normal request still gets its answer (unsigned, no digest: 400)");
});

t.test("finding 7: header ambiguities are refused with problem+json", async (t) => {
  const gw = await startGateway({ tls: { handshakesPerSecondPerAddress: 0 } });
  t.teardown(() => gw.stop());
  const material = await tlsMaterial(gw.certs);
  const port = gw.addresses.data.port;
  const authority = `localhost:${port}`;
  const body = '{"a":1}';

  const good = signRawRequest(material, { authority, path: "/v1/messages/h", body });
  const control = await rawExchange(port, good.text(), material);
  t.equal(control.status, 202, "the control request is accepted");

  const twoHosts = signRawRequest(material, { authority, path: "/v1/messages/h", body });
  const answer = await rawExchange(port, twoHosts.text([["host", "evil.example"]]), material);
  t.equal(answer.status, 400, "two Host lines: 400");
  t.equal(JSON.parse(answer.body).code, "bad-request");

  const noHost = await rawExchange(port, `POST /v1/messages/h HTTP/1.1\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`, material);
  t.equal(noHost.status, 400, "no Host: 400");
  t.equal(noHost.headers["content-type"], "application/problem+json");
  t.equal(JSON.parse(noHost.body).code, "bad-request");

  const right = createContentDigest(Buffer.from(body), "sha-256");
  const wrongFirst = `sha-256=:${Buffer.alloc(32).toString("base64")}:, ${right}`;
  const twoDigests = signRawRequest(material, { authority, path: "/v1/messages/h", body, contentDigest: wrongFirst });
  const digestAnswer = await rawExchange(port, twoDigests.text(), material);
  t.equal(digestAnswer.status, 400, "a Content-Digest naming sha-256 twice is refused, though its last member matches");
  t.equal(JSON.parse(digestAnswer.body).code, "bad-request");

  const many = signRawRequest(material, { authority, path: "/v1/messages/h", body });
  const filler = Array.from({ length: 150 }, (_, i) => [`x-filler-${i}`, "1"] as [string, string]);
  const manyAnswer = await rawExchange(port, many.text(filler), material);
  t.equal(manyAnswer.status, 431, "more header lines than limits.maxHeaderCount: 431");
  t.equal(JSON.parse(manyAnswer.body).code, "headers-too-large");
});

t.test("finding 7: header lines past Node's 2,000 are counted, never dropped", async (t) => {
  const gw = await startGateway({ tls: { handshakesPerSecondPerAddress: 0 }, limits: { maxHeaderCount: 5000, maxHeaderBytes: 1024 * 1024 } });
  t.teardown(() => gw.stop());
  const material = await tlsMaterial(gw.certs);
  const port = gw.addresses.data.port;
  const request = signRawRequest(material, { authority: `localhost:${port}`, path: "/v1/messages/h", body: "{}" });
  // The covered fields come after 2,000 filler lines: dropped, the signature would be missing.
  const filler = Array.from({ length: 2100 }, (_, i) => `x-f-${i}: 1\r\n`).join("");
  const lines = request.headers.map(([k, v]) => `${k}: ${v}\r\n`).join("");
  const answer = await rawExchange(port, `POST /v1/messages/h HTTP/1.1\r\n${filler}${lines}\r\n{}`, material);
  t.equal(answer.status, 202, "every line was seen, so the signature verifies");
});

t.test("finding 8: a nonce reused on another topic of the same backend is a replay, not 'already accepted'", async (t) => {
  const gw = await startGateway({ tls: { handshakesPerSecondPerAddress: 0 } });
  t.teardown(() => gw.stop());
  const client = await gw.client("demo-client", { nonce: () => "fixed-nonce-0123456789" });
  const first = await client.dispatch(client.prepare("/v1/messages/alpha", "{}"));
  t.equal(first.status, 202);
  const id = (first.body as { id: string }).id;
  const other = await client.dispatch(client.prepare("/v1/messages/beta", "{}"));
  t.equal(other.status, 409);
  t.equal((other.body as { code: string }).code, "replayed");
  t.notOk((other.body as { messageId?: string }).messageId, "it names no message: it was never accepted");
  const again = await client.dispatch(client.prepare("/v1/messages/alpha", "{}"));
  t.equal(again.status, 409);
  t.equal((again.body as { messageId?: string }).messageId, id, "an exact re-send still names the original");
});

t.test("finding 10: a client that hangs up mid-body is client-closed, never a 500", async (t) => {
  const gw = await startGateway({ tls: { handshakesPerSecondPerAddress: 0 } });
  t.teardown(() => gw.stop());
  const material = await tlsMaterial(gw.certs);
  const port = gw.addresses.data.port;
  const request = signRawRequest(material, { authority: `localhost:${port}`, path: "/v1/messages/h", body: "x".repeat(1000) });
  const text = request.text();
  for (let i = 0; i < 3; i++) {
    const socket = await openTls(port, material);
    socket.write(text.slice(0, text.length - 500));
    await new Promise((resolve) => setTimeout(resolve, 100));
    socket.destroy();
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  const metrics = await (await fetch(`${gw.publicUrl}/metrics`)).text();
  t.match(metrics, /postern_requests_total\{route="messages",outcome="client-closed",status="499"\} 3/);
  t.notMatch(metrics, /postern_requests_total\{[^}]*status="500"/, "no 500");
});

t.test("a request over an idle keep-alive connection after an error still works (no torn parser state)", async (t) => {
  const gw = await startGateway({ tls: { handshakesPerSecondPerAddress: 0 } });
  t.teardown(() => gw.stop());
  const material = await tlsMaterial(gw.certs);
  const socket = await openTls(gw.addresses.data.port, material);
  const answer = await readAnswer(socket, "POST /v1/messages/x HTTP/1.1\r\nhost: localhost\r\ncontent-type: text/plain\r\ncontent-length: 5000\r\n\r\nabc", 3000);
  t.equal(answer.status, 415, "refused before the body was read");
  t.equal(answer.headers.connection, "close", "and the connection closes, since the unread body would be parsed as a request");
});
