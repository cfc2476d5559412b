import { createHash, createPublicKey, X509Certificate, type JsonWebKey } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer as createHttpsServer, type Server } from "node:https";
import type { IncomingMessage } from "node:http";
import { freePort } from "../helpers/net.js";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import t from "tap";
import { FORWARD_COMPONENTS } from "../../src/forward/stream-entry.js";
import { ensurePki } from "../../src/pki/ca/bootstrap.js";
import { FORWARD_TAG, verifyMessage } from "../../src/signing/index.js";
import { startGateway } from "../helpers/gateway.js";


interface Seen {
  method: string;
  url: string;
  headers: Array<[string, string]>;
  body: string;
  peerFingerprint: string | undefined;
}

function pairs(raw: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
  return out;
}

function values(seen: Seen, name: string): string[] {
  return seen.headers.filter(([n]) => n === name).map(([, v]) => v);
}

t.test("HTTP backend: a real mTLS upstream behind the gateway", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "postern-http-backend-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { material: pki } = await ensurePki({ dir: join(dir, "certs"), hostnames: [] });
  // The upstream serves the certificate minted now; the gateway may re-issue its own at start
  // (same key, other URLs), so the client certificate it presents is read once it runs.
  const upstreamCert = new X509Certificate(pki.serverCertChainPem);
  let gatewayCert: X509Certificate | undefined;
  const seen: Seen[] = [];
  let failing = false;
  const accepted = new WeakSet<object>();
  const upstream: Server = createHttpsServer(
    { key: pki.serverKeyPem, cert: pki.serverCertChainPem, ca: pki.caBundlePem, requestCert: true, rejectUnauthorized: false },
    (req: IncomingMessage, res) => {
      if (!accepted.has(req.socket)) {
        req.socket.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const peer = (req.socket as TLSSocket).getPeerCertificate() as { raw?: Buffer } | null;
        const entry: Seen = {
          method: req.method ?? "",
          url: req.url ?? "",
          headers: pairs(req.rawHeaders),
          body: Buffer.concat(chunks).toString(),
          peerFingerprint: peer?.raw ? createHash("sha256").update(peer.raw).digest("base64url") : undefined,
        };
        seen.push(entry);
        if (entry.url.includes("/slow/")) {
          setTimeout(() => res.end("late"), 1500).unref();
          return;
        }
        if (entry.url.includes("/breaker/") && failing) {
          res.writeHead(500, { "content-type": "text/plain" }).end("upstream broke");
          return;
        }
        const body = JSON.stringify({ received: entry.body, url: entry.url });
        res.writeHead(201, { "content-type": "application/json", "x-upstream": "yes", "x-hop": "1", connection: "x-hop" });
        res.end(body);
      });
    },
  );
  upstream.on("secureConnection", (socket: TLSSocket) => {
    // The upstream requires a client certificate from Postern's CA, with the clientAuth EKU
    // (the gateway's server certificate carries serverAuth and clientAuth).
    if (socket.authorized) accepted.add(socket);
    else socket.destroy();
  });
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  t.teardown(() => {
    upstream.closeAllConnections();
    return new Promise((resolve) => upstream.close(resolve));
  });
  const upstreamUrl = `https://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const upstreamPin = createHash("sha256")
    .update(upstreamCert.publicKey.export({ type: "spki", format: "der" }))
    .digest("base64");

  const http = (url: string, extra: Record<string, unknown> = {}) => ({ type: "http", url, ...extra });
  const route = (name: string) => ({ name, path: `/v1/${name}/:id`, backend: name, allow: { roles: ["client"] } });
  const gw = await startGateway(
    {
      backends: {
        up: http(`${upstreamUrl}/in`, { identityHeaders: { "x-postern-identity": "id", "x-postern-roles": "roles", "x-postern-serial": "serial" } }),
        down: http(`https://127.0.0.1:${await freePort()}`, { retries: 1, breaker: { failureThreshold: 100 } }),
        breaker: http(upstreamUrl, { breaker: { failureThreshold: 2, openSeconds: 0.3 } }),
        slow: http(upstreamUrl, { headersTimeoutSeconds: 0.3 }),
        wrongpin: http(upstreamUrl, { tls: { pinSha256: ["A".repeat(43) + "="] } }),
        rightpin: http(upstreamUrl, { tls: { pinSha256: ["A".repeat(43) + "=", upstreamPin] } }),
        nomtls: http(upstreamUrl, { tls: { clientCertificate: false } }),
      },
      routes: ["up", "down", "breaker", "slow", "wrongpin", "rightpin", "nomtls"].map(route),
    },
    { dir },
  );
  t.teardown(() => gw.stop());
  gatewayCert = new X509Certificate(gw.app.pki.serverCertChainPem);
  const gatewayFingerprint = createHash("sha256").update(gatewayCert.raw).digest("base64url");
  const client = await gw.client();
  const clientCertDer = new X509Certificate(await readFile(join(dir, "certs", "demo-client.crt"))).raw;
  const requestsTo = (fragment: string) => seen.filter((s) => s.url.includes(fragment));
  const metric = async (pattern: RegExp) => pattern.test(await (await fetch(`${gw.publicUrl}/metrics`)).text());

  t.test("the upstream's status, body and end-to-end headers come back; hop-by-hop ones do not", async (t) => {
    const answer = await client.dispatch(client.prepare("/v1/up/orders?x=1&y=2", '{"order":1}'));
    t.equal(answer.status, 201);
    t.same(answer.body, { received: '{"order":1}', url: "/in/v1/up/orders?x=1&y=2" });
    t.equal(answer.headers["x-upstream"], "yes");
    t.notOk(answer.headers["x-hop"], "a field the upstream's Connection lists is dropped");
  });

  t.test("the upstream sees the client certificate, the identity and a gateway signature it can verify", async (t) => {
    const message = client.prepare("/v1/up/identity", '{"who":1}');
    message.headers["x-postern-identity"] = "spiffe://evil/impostor";
    message.headers["x-postern-roles"] = "admin";
    const answer = await client.dispatch(message);
    t.equal(answer.status, 201);
    const got = requestsTo("/v1/up/identity")[0]!;
    t.equal(got.peerFingerprint, gatewayFingerprint, "mTLS with the gateway's certificate");
    t.same(values(got, "x-postern-identity"), ["spiffe://postern.local/client/demo"], "a client-sent identity header never arrives");
    t.same(values(got, "x-postern-roles"), ["client"]);
    t.same(values(got, "x-postern-serial").length, 1);
    t.same(values(got, "client-cert"), [`:${clientCertDer.toString("base64")}:`]);
    t.equal(values(got, "x-postern-message-id").length, 1);
    t.match(values(got, "signature-input")[0], /^postern=\(/);
    t.notMatch(values(got, "signature-input")[0], /sig1/, "the client's signature is not forwarded");
    t.match(values(got, "signature-input")[0], /tag="postern-forward"/);

    const jwks = (await (await fetch(`${gw.publicUrl}/.well-known/postern-keys`)).json()) as { keys: Array<JsonWebKey & { kid: string }> };
    const jwk = jwks.keys[0]!;
    const queryAt = got.url.indexOf("?");
    const parts = {
      method: got.method,
      scheme: "https" as const,
      authority: values(got, "host")[0]!,
      path: queryAt === -1 ? got.url : got.url.slice(0, queryAt),
      query: queryAt === -1 ? "" : got.url.slice(queryAt),
      headers: got.headers,
    };
    const options = {
      resolveKey: (keyid: string) => (keyid === jwk.kid ? { key: createPublicKey({ key: jwk, format: "jwk" }) } : undefined),
      now: Date.now,
      maxAgeSeconds: 300,
      clockSkewSeconds: 30,
      tag: FORWARD_TAG,
      requiredComponents: FORWARD_COMPONENTS,
      requiredParameters: ["created", "expires", "nonce", "keyid", "tag"] as const,
    };
    const verified = verifyMessage(parts, options);
    t.ok(verified.ok, "the forwarded signature verifies with the JWKS key");
    if (verified.ok) {
      t.equal(verified.params.nonce, values(got, "x-postern-message-id")[0]);
      t.equal(verified.params.expires, verified.params.created! + 60);
    }
    const tampered = verifyMessage({ ...parts, path: "/in/v1/up/other" }, options);
    t.notOk(tampered.ok, "another path does not verify");
  });

  t.test("a replay to an HTTP route is refused and the upstream sees the message once", async (t) => {
    const message = client.prepare("/v1/up/replay-once", "{}");
    t.equal((await client.dispatch(message)).status, 201);
    const again = await client.dispatch(message);
    t.equal(again.status, 409);
    t.equal((again.body as { code: string }).code, "replayed");
    t.equal(requestsTo("/v1/up/replay-once").length, 1);
  });

  t.test("an unreachable upstream is 503 backend-unavailable with Retry-After", async (t) => {
    const answer = await client.dispatch(client.prepare("/v1/down/x", "{}"));
    t.equal(answer.status, 503);
    t.equal((answer.body as { code: string }).code, "backend-unavailable");
    t.ok(Number(answer.headers["retry-after"]) >= 1);
  });

  t.test("the breaker opens after N failures, refuses without calling the upstream, then closes", async (t) => {
    failing = true;
    for (const i of [1, 2]) {
      const answer = await client.dispatch(client.prepare(`/v1/breaker/fail-${i}`, "{}"));
      t.equal(answer.status, 500, "an upstream 5xx is passed through");
      t.equal(answer.body, "upstream broke");
    }
    const before = requestsTo("/v1/breaker/").length;
    const refused = await client.dispatch(client.prepare("/v1/breaker/refused", "{}"));
    t.equal(refused.status, 503);
    t.equal((refused.body as { code: string }).code, "backend-unavailable");
    t.equal(refused.headers["retry-after"], "1");
    t.equal(requestsTo("/v1/breaker/").length, before, "the upstream was not contacted");
    t.ok(await metric(/postern_backend_breaker_state\{backend="breaker"\} 2\b/));

    failing = false;
    await new Promise((resolve) => setTimeout(resolve, 350));
    const trial = await client.dispatch(client.prepare("/v1/breaker/trial", "{}"));
    t.equal(trial.status, 201);
    t.ok(await metric(/postern_backend_breaker_state\{backend="breaker"\} 0\b/));
    t.equal((await client.dispatch(client.prepare("/v1/breaker/after", "{}"))).status, 201);
  });

  t.test("an upstream slower than headersTimeoutSeconds is 504 backend-timeout", async (t) => {
    const started = Date.now();
    const answer = await client.dispatch(client.prepare("/v1/slow/x", "{}"));
    t.equal(answer.status, 504);
    t.equal((answer.body as { code: string }).code, "backend-timeout");
    t.ok(Date.now() - started < 1400, "the gateway did not wait for the upstream");
    t.equal(requestsTo("/v1/slow/x").length, 1, "a request that was sent is never retried");
  });

  t.test("pinning: a wrong pin is refused before any request, a matching pin passes", async (t) => {
    const wrong = await client.dispatch(client.prepare("/v1/wrongpin/x", "{}"));
    t.equal(wrong.status, 503);
    t.equal((wrong.body as { code: string }).code, "backend-unavailable");
    t.equal(requestsTo("/v1/wrongpin/").length, 0);
    t.equal((await client.dispatch(client.prepare("/v1/rightpin/x", "{}"))).status, 201);
  });

  t.test("without the gateway's client certificate the upstream refuses: 503", async (t) => {
    const answer = await client.dispatch(client.prepare("/v1/nomtls/x", "{}"));
    t.equal(answer.status, 503);
    t.equal(requestsTo("/v1/nomtls/").length, 0);
  });
});
