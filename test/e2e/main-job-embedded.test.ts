import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { connect } from "node:tls";
import t from "tap";
import { PosternRequestError } from "../../src/client/index.js";
import { startGateway } from "../helpers/gateway.js";

t.test("embedded mode: the main job end to end over real mTLS", async (t) => {
  const gw = await startGateway();
  t.teardown(() => gw.stop());
  const client = await gw.client();

  t.test("a signed message is accepted and written to the file backend", async (t) => {
    const result = await client.send("/v1/messages/orders", JSON.stringify({ order: 1 }));
    t.equal(result.status, 202);
    t.match(result.id, /^[0-9a-f-]{36}$/);
    const lines = (await readFile(join(gw.dir, "data", "messages.jsonl"), "utf8")).trim().split("\n");
    const entry = JSON.parse(lines.at(-1)!);
    t.equal(entry.fields["message-id"], result.id);
    t.equal(entry.fields.identity, "spiffe://postern.local/client/demo");
    t.equal(Buffer.from(entry.fields.body, "base64").toString(), JSON.stringify({ order: 1 }));
    t.match(entry.fields["signature-input"], /tag="postern-forward"/);
  });

  t.test("the same request re-sent is refused as replayed, naming the original", async (t) => {
    const message = client.prepare("/v1/messages/orders", "{}");
    const first = await client.dispatch(message);
    t.equal(first.status, 202);
    const again = await client.dispatch(message);
    t.equal(again.status, 409);
    t.equal((again.body as { code: string }).code, "replayed");
    t.equal((again.body as { messageId: string }).messageId, (first.body as { id: string }).id);
    t.equal(again.headers["content-type"], "application/problem+json");
  });

  t.test("the same nonce with other content is a replay without an id", async (t) => {
    let n = 0;
    const fixed = await gw.client("demo-client", { nonce: () => `fixed-nonce-for-test-${n}` });
    const first = await fixed.dispatch(fixed.prepare("/v1/messages/a", '{"a":1}'));
    t.equal(first.status, 202);
    const other = await fixed.dispatch(fixed.prepare("/v1/messages/a", '{"a":2}'));
    t.equal(other.status, 409);
    t.equal((other.body as { code: string }).code, "replayed");
    t.notOk((other.body as { messageId?: string }).messageId);
  });

  t.test("a changed body with the old signature fails the digest", async (t) => {
    const message = client.prepare("/v1/messages/orders", '{"amount":1}');
    const answer = await client.dispatch({ ...message, body: Buffer.from('{"amount":9}') });
    t.equal(answer.status, 400);
    t.equal((answer.body as { code: string }).code, "digest-mismatch");
  });

  t.test("a changed path fails the signature", async (t) => {
    const message = client.prepare("/v1/messages/orders", "{}");
    const answer = await client.dispatch({ ...message, url: message.url.replace("/orders", "/refunds") });
    t.equal(answer.status, 401);
    t.equal((answer.body as { code: string }).code, "signature-invalid");
  });

  t.test("an unsigned request is refused", async (t) => {
    const message = client.prepare("/v1/messages/orders", "{}");
    const { "signature-input": _i, signature: _s, ...headers } = message.headers;
    const answer = await client.dispatch({ ...message, headers });
    t.equal((answer.body as { code: string }).code, "signature-missing");
  });

  t.test("a stale signature is refused", async (t) => {
    const old = await gw.client("demo-client", { now: () => Date.now() - 400_000 });
    await t.rejects(old.send("/v1/messages/orders", "{}"), { code: "stale", status: 401 });
  });

  t.test("a signature from the future is refused", async (t) => {
    const future = await gw.client("demo-client", { now: () => Date.now() + 120_000 });
    await t.rejects(future.send("/v1/messages/orders", "{}"), { code: "from-future" });
  });

  t.test("a keyid that is not the TLS peer is refused", async (t) => {
    const admin = await gw.client("admin");
    const signedByAdmin = admin.prepare("/v1/messages/orders", "{}");
    const answer = await client.dispatch(signedByAdmin);
    t.equal((answer.body as { code: string }).code, "key-mismatch");
  });

  t.test("an identity without the route's role is forbidden", async (t) => {
    const admin = await gw.client("admin");
    await t.rejects(admin.send("/v1/messages/orders", "{}"), { code: "forbidden", status: 403 });
  });

  t.test("unknown path, wrong method, wrong content type, oversized body", async (t) => {
    await t.rejects(client.send("/v2/nothing", "{}"), { code: "not-found", status: 404 });
    await t.rejects(client.send("/v1/messages/orders", "x", "text/plain"), { code: "unsupported-media-type", status: 415 });
    await t.rejects(client.send("/v1/messages/orders", JSON.stringify({ big: "x".repeat(1024 * 1024) })), {
      code: "body-too-large",
      status: 413,
    });
    const message = client.prepare("/v1/messages/orders", "{}", "application/json", "PUT");
    const answer = await client.dispatch(message);
    t.equal((answer.body as { code: string }).code, "method-not-allowed");
  });

  t.test("errors are typed on the client side", async (t) => {
    const error = await client.send("/v2/nothing", "{}").catch((e: unknown) => e);
    t.ok(error instanceof PosternRequestError);
  });

  t.test("a client without a certificate never reaches HTTP, and the reason is counted", async (t) => {
    const ca = await readFile(join(gw.dir, "certs", "ca-bundle.pem"));
    const outcome = await new Promise<string>((resolve) => {
      const socket = connect({ host: "127.0.0.1", port: gw.addresses.data.port, ca, servername: "localhost" }, () => {
        socket.write("POST /v1/messages/orders HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}");
      });
      let received = "";
      socket.on("data", (d) => (received += d.toString()));
      socket.on("close", () => resolve(received));
      socket.on("error", () => undefined);
    });
    t.equal(outcome, "", "no HTTP response at all");
    const metrics = await (await fetch(`${gw.publicUrl}/metrics`)).text();
    t.match(metrics, /postern_tls_handshake_failures_total\{reason="no_cert"\} [1-9]/);
  });

  t.test("responses carry Date", async (t) => {
    const answer = await client.dispatch(client.prepare("/v1/messages/orders", "{}"));
    t.ok(answer.headers.date);
  });
});
