import { createHash, generateKeyPairSync, X509Certificate } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t, { type Test } from "tap";
import { freePort } from "../helpers/net.js";
import { backendSchema } from "../../src/config/schema.js";
import { PosternError } from "../../src/errors.js";
import type { AcceptedMessage } from "../../src/forward/backend.js";
import { HttpBackend, type HttpBackendConfig, type HttpBackendOptions } from "../../src/forward/http-backend.js";
import { FORWARD_COMPONENTS } from "../../src/forward/stream-entry.js";
import { noopRecorder, type MetricsRecorder } from "../../src/metrics/recorder.js";
import { ensurePki, type PkiMaterial } from "../../src/pki/ca/bootstrap.js";
import { MemoryReplayGuard } from "../../src/replay/memory-guard.js";
import type { NonceClaim } from "../../src/replay/nonce.js";
import { createContentDigest, FORWARD_TAG, verifyMessage } from "../../src/signing/index.js";

t.setTimeout(60_000);

const signing = generateKeyPairSync("ed25519");
const signer = { key: signing.privateKey, keyid: "gateway-key" };

interface Seen {
  method: string;
  url: string;
  headers: Array<[string, string]>;
  body: string;
}

function recordingMetrics() {
  const requests: Array<[string, string]> = [];
  const states: string[] = [];
  const metrics: MetricsRecorder = {
    ...noopRecorder,
    backendRequest: (backend, outcome) => void requests.push([backend, outcome]),
    breakerState: (_backend, state) => void states.push(state),
  };
  return { metrics, requests, states };
}

let counter = 0;
function message(body = '{"n":1}', overrides: Partial<AcceptedMessage> = {}): { message: AcceptedMessage; claim: NonceClaim } {
  counter += 1;
  const digest = createContentDigest(Buffer.from(body), "sha-256");
  const accepted: AcceptedMessage = {
    messageId: `message-${counter}`,
    route: "r",
    params: {},
    identity: { id: "spiffe://postern.local/client/demo", roles: ["client", "ops"], serial: "01", fingerprint: "fp", notAfterMs: 0 },
    clientCertDer: Buffer.from("not-really-a-certificate"),
    method: "POST",
    authority: "gateway.example:8443",
    path: "/v1/messages/orders",
    query: "?a=1",
    contentType: "application/json",
    contentDigest: digest,
    body: Buffer.from(body),
    receivedAtMs: Date.now(),
    ...overrides,
  };
  const claim: NonceClaim = { backend: "b", client: "fp", nonce: `nonce-for-test-${counter}`, digest, expiresAtMs: Date.now() + 60_000 };
  return { message: accepted, claim };
}

async function listen(t: Test, server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return (server.address() as AddressInfo).port;
}

/** A plain HTTP upstream that records what it receives and answers with `reply`. */
async function upstream(t: Test, reply: (seen: Seen, res: Parameters<RequestListener>[1]) => void) {
  const seen: Seen[] = [];
  const server = createHttpServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = req.rawHeaders;
      const headers: Array<[string, string]> = [];
      for (let i = 0; i + 1 < raw.length; i += 2) headers.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
      const entry = { method: req.method ?? "", url: req.url ?? "", headers, body: Buffer.concat(chunks).toString() };
      seen.push(entry);
      reply(entry, res);
    });
  });
  const port = await listen(t, server);
  return { seen, url: `http://127.0.0.1:${port}` };
}

function config(url: string, extra: Record<string, unknown> = {}): HttpBackendConfig {
  return backendSchema.parse({ type: "http", url, tls: { clientCertificate: false }, ...extra }) as HttpBackendConfig;
}

function backend(t: Test, cfg: HttpBackendConfig, extra: Partial<HttpBackendOptions> = {}) {
  const recorded = recordingMetrics();
  const guard = new MemoryReplayGuard();
  const instance = new HttpBackend({ name: "b", config: cfg, guard, signer, metrics: recorded.metrics, caBundlePem: "", ...extra });
  t.teardown(() => instance.close());
  return { backend: instance, guard, ...recorded };
}

async function rejection(promise: Promise<unknown>): Promise<PosternError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof PosternError)) throw new Error(`expected a PosternError, got ${String(error)}`);
  return error;
}

t.test("forwards a signed request under the base path and passes the answer back", async (t) => {
  const up = await upstream(t, (_seen, res) => {
    res.writeHead(202, { "content-type": "text/plain", "keep-alive": "timeout=5", "x-trace": "t1" }).end("queued");
  });
  const b = backend(t, config(`${up.url}/base/`));
  t.same(b.states, ["closed"], "the breaker state is reported from the start");
  const { message: m, claim } = message();
  const delivery = await b.backend.deliver(m, claim);
  t.same(delivery, { kind: "response", messageId: m.messageId, status: 202, headers: delivery.kind === "response" ? { ...delivery.headers } : {}, body: Buffer.from("queued") });
  if (delivery.kind !== "response") return;
  t.equal(delivery.headers["x-trace"], "t1");
  t.notOk(delivery.headers["keep-alive"]);
  t.notOk(delivery.headers["content-length"]);
  t.same(b.requests, [["b", "ok"]]);

  const got = up.seen[0]!;
  const header = (name: string) => got.headers.filter(([n]) => n === name).map(([, v]) => v);
  t.equal(got.method, "POST");
  t.equal(got.url, "/base/v1/messages/orders?a=1");
  t.equal(got.body, '{"n":1}');
  t.same(header("content-type"), ["application/json"]);
  t.same(header("content-digest"), [m.contentDigest]);
  t.same(header("client-cert"), [`:${Buffer.from(m.clientCertDer).toString("base64")}:`]);
  t.same(header("x-postern-identity"), ["spiffe://postern.local/client/demo"]);
  t.same(header("x-postern-roles"), ["client,ops"]);
  t.same(header("x-postern-message-id"), [m.messageId]);
  const queryAt = got.url.indexOf("?");
  const verified = verifyMessage(
    { method: got.method, scheme: "http", authority: header("host")[0]!, path: got.url.slice(0, queryAt), query: got.url.slice(queryAt), headers: got.headers },
    {
      resolveKey: (keyid) => (keyid === signer.keyid ? { key: signing.publicKey } : undefined),
      now: Date.now,
      maxAgeSeconds: 60,
      clockSkewSeconds: 5,
      tag: FORWARD_TAG,
      label: "postern",
      requiredComponents: FORWARD_COMPONENTS,
      requiredParameters: ["created", "expires", "nonce", "keyid", "tag"],
    },
  );
  t.ok(verified.ok, "the upstream can verify the gateway's signature");
  if (verified.ok) t.equal(verified.params.nonce, m.messageId);
});

t.test("a re-send and other content with the same nonce are both replays; the upstream sees one", async (t) => {
  const up = await upstream(t, (_seen, res) => res.end("ok"));
  const b = backend(t, config(up.url));
  const { message: m, claim } = message();
  t.equal((await b.backend.deliver(m, claim)).kind, "response");
  t.same(await b.backend.deliver({ ...m, messageId: "other-id" }, claim), { kind: "replayed" }, "an exact re-send is a replay: the first answer is not kept");
  t.same(await b.backend.deliver(m, { ...claim, digest: "sha-256=:other:" }), { kind: "replayed" });
  t.equal(up.seen.length, 1);
});

t.test("an unreachable upstream: 503 with Retry-After, and the nonce is given back", async (t) => {
  const b = backend(t, config(`http://127.0.0.1:${await freePort()}`, { retries: 2, breaker: { failureThreshold: 10 } }));
  const { message: m, claim } = message();
  const error = await rejection(b.backend.deliver(m, claim));
  t.equal(error.code, "backend-unavailable");
  t.equal(error.extensions.retryAfterSeconds, 1);
  t.same(b.requests, [["b", "error"]]);
  t.equal(b.guard.size, 0, "nothing was sent, so the same signed request may be retried");
});

t.test("an open breaker refuses before the nonce is claimed, with the remaining open time", async (t) => {
  let nowMs = 1_000_000;
  const b = backend(t, config(`http://127.0.0.1:${await freePort()}`, { retries: 0, breaker: { failureThreshold: 1, openSeconds: 30 } }), {
    now: () => nowMs,
  });
  await rejection(b.backend.deliver(message().message, message().claim));
  t.same(b.states, ["closed", "open"]);
  nowMs += 10_000;
  const { message: m, claim } = message();
  const refused = await rejection(b.backend.deliver(m, claim));
  t.equal(refused.code, "backend-unavailable");
  t.equal(refused.extensions.retryAfterSeconds, 20);
  t.equal(b.requests.at(-1)?.[1], "rejected");
  t.equal(b.guard.size, 0, "neither the unsent nor the refused message spent its nonce");
});

t.test("an upstream 5xx is passed through and counts as a breaker failure", async (t) => {
  const up = await upstream(t, (_seen, res) => res.writeHead(502).end("bad gateway upstream"));
  const b = backend(t, config(up.url, { breaker: { failureThreshold: 1 } }));
  const delivery = await b.backend.deliver(message().message, message().claim);
  t.equal(delivery.kind === "response" && delivery.status, 502);
  t.same(b.requests, [["b", "error"]]);
  t.same(b.states, ["closed", "open"]);
});

t.test("a request that was sent is never retried, even when the connection then fails", async (t) => {
  let requests = 0;
  const server = createHttpServer((req) => {
    requests += 1;
    req.socket.destroy();
  });
  const port = await listen(t, server);
  const b = backend(t, config(`http://127.0.0.1:${port}`, { retries: 3 }));
  const error = await rejection(b.backend.deliver(message().message, message().claim));
  t.equal(error.code, "backend-unavailable");
  t.equal(requests, 1);
});

t.test("a body that stalls beyond bodyTimeoutSeconds is 504 backend-timeout", async (t) => {
  const up = await upstream(t, (_seen, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.write("partial");
  });
  const b = backend(t, config(up.url, { bodyTimeoutSeconds: 0.2 }));
  const error = await rejection(b.backend.deliver(message().message, message().claim));
  t.equal(error.code, "backend-timeout");
  t.equal(error.status, 504);
  t.same(b.requests, [["b", "timeout"]]);
});

t.test("https upstreams: connection failures before sending are retried; trust comes from the anchors given", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "postern-http-backend-unit-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const [{ material: pki }, { material: other }] = await Promise.all([
    ensurePki({ dir: join(dir, "a"), hostnames: [] }),
    ensurePki({ dir: join(dir, "b"), hostnames: [] }),
  ]);
  let connections = 0;
  let dropNext = 0;
  const server = createHttpsServer({ key: pki.serverKeyPem, cert: pki.serverCertChainPem }, (_req, res) => res.end("secure"));
  server.prependListener("connection", (socket: Socket) => {
    connections += 1;
    if (dropNext > 0) {
      dropNext -= 1;
      socket.destroy();
    }
  });
  const port = await listen(t, server);
  const url = `https://127.0.0.1:${port}`;
  const https = (extra: Record<string, unknown>, material: PkiMaterial = pki) => backend(t, config(url, extra), { caBundlePem: material.caBundlePem });

  dropNext = 1;
  const retried = await https({ retries: 1 }).backend.deliver(message().message, message().claim);
  t.equal(retried.kind === "response" && retried.body.toString(), "secure");
  t.equal(connections, 2, "the dropped handshake was retried once");

  connections = 0;
  dropNext = 1;
  const noRetry = await rejection(https({ retries: 0 }).backend.deliver(message().message, message().claim));
  t.equal(noRetry.code, "backend-unavailable");
  t.equal(connections, 1);

  connections = 0;
  const untrusted = await rejection(https({ retries: 3 }, other).backend.deliver(message().message, message().claim));
  t.equal(untrusted.code, "backend-unavailable", "another CA's bundle does not trust the upstream");
  t.equal(connections, 1, "a certificate failure is not retried");


  const spki = new X509Certificate(pki.serverCertChainPem).publicKey.export({ type: "spki", format: "der" });
  const pin = createHash("sha256").update(spki).digest("base64");
  const pinned = await https({ tls: { clientCertificate: false, pinSha256: [pin] } }).backend.deliver(message().message, message().claim);
  t.equal(pinned.kind === "response" && pinned.status, 200);
  const wrongPin = "B".repeat(43) + "=";
  const refused = await rejection(https({ tls: { clientCertificate: false, pinSha256: [wrongPin] } }).backend.deliver(message().message, message().claim));
  t.equal(refused.code, "backend-unavailable");
});
