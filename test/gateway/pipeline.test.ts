/**
 * The data-plane pipeline on plain values: a fake backend, an in-memory limiter and a fake
 * clock; one rule per test, each with its refusal code.
 */
import { generateKeyPairSync, X509Certificate, webcrypto } from "node:crypto";
import t from "tap";
import { parseConfig } from "../../src/config/load.js";
import { PosternError } from "../../src/errors.js";
import type { AcceptedMessage, Backend, Delivery } from "../../src/forward/backend.js";
import { Gateway, type BackendSealing } from "../../src/gateway/pipeline.js";
import { parseSealingJwks, privateKeyFromPem, sealPayload } from "../../src/sealed/index.js";
import { RouteTable } from "../../src/gateway/routes.js";
import { noopRecorder } from "../../src/metrics/recorder.js";
import { identityFromCertificate } from "../../src/pki/identity.js";
import { x509 } from "../../src/pki/der/x509.js";
import { MemoryRateLimiter } from "../../src/ratelimit/memory-limiter.js";
import type { NonceClaim } from "../../src/replay/nonce.js";
import { createContentDigest, PROFILE_COMPONENTS, PROFILE_TAG, PublicKeyCache, signMessage, certificateThumbprint, type HttpMessageParts } from "../../src/signing/index.js";

const T0 = Date.parse("2026-06-01T12:00:00Z");
const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };

async function client(cn: string, ou: string) {
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: `CN=${cn}, OU=${ou}`,
    notBefore: new Date(T0 - 86_400_000),
    notAfter: new Date(T0 + 86_400_000),
    keys,
    signingAlgorithm: algorithm,
  });
  const der = Buffer.from(cert.rawData);
  const { KeyObject } = await import("node:crypto");
  return { der, key: KeyObject.from(keys.privateKey), identity: identityFromCertificate(new X509Certificate(der)) };
}

const alice = await client("alice", "client");
const mallory = await client("mallory", "intruder");

/** A backend that records what it was handed and answers as told. */
class FakeBackend implements Backend {
  readonly name = "messages";
  readonly kind = "fake";
  readonly delivered: Array<{ message: AcceptedMessage; claim: NonceClaim }> = [];
  answer: (message: AcceptedMessage) => Delivery = (m) => ({ kind: "accepted", messageId: m.messageId });
  async deliver(message: AcceptedMessage, claim: NonceClaim): Promise<Delivery> {
    this.delivered.push({ message, claim });
    return this.answer(message);
  }
  async close(): Promise<void> {}
}

function gatewayWith(overrides: Record<string, unknown> = {}, sealing?: BackendSealing) {
  let now = T0;
  const backend = new FakeBackend();
  const config = parseConfig({
    ...(sealing ? { backends: { messages: { type: "stream", sealing: { publicKeys: "/elsewhere/jwks.json" } } } } : {}),
    routes: [{ name: "messages", path: "/v1/messages/:topic", backend: "messages", allow: { roles: ["client"] }, maxBodyBytes: 64, ...overrides }],
  });
  const gateway = new Gateway({
    routes: new RouteTable(config.routes),
    backends: new Map([["messages", backend]]),
    ...(sealing ? { sealing: new Map([["messages", sealing]]) } : {}),
    signature: config.signature,
    keys: new PublicKeyCache(),
    rateLimiter: new MemoryRateLimiter(() => now),
    metrics: noopRecorder,
    now: () => now,
  });
  return { gateway, backend, advance: (ms: number) => (now += ms) };
}

function signed(who = alice, options: { path?: string; body?: string; nonce?: string; createdMs?: number; keyid?: string; contentType?: string } = {}): HttpMessageParts & { body: Buffer } {
  const body = Buffer.from(options.body ?? '{"n":1}');
  const path = options.path ?? "/v1/messages/orders";
  const headers: Array<[string, string]> = [
    ["content-type", options.contentType ?? "application/json"],
    ["content-digest", createContentDigest(body, "sha-256")],
  ];
  const message: HttpMessageParts = { method: "POST", scheme: "https", authority: "gw:8443", path, query: "", headers };
  const fields = signMessage(message, {
    key: who.key,
    keyid: options.keyid ?? certificateThumbprint(who.der),
    components: PROFILE_COMPONENTS,
    created: Math.floor((options.createdMs ?? T0) / 1000),
    nonce: options.nonce ?? `nonce-${Math.random().toString(36).slice(2)}-padding`,
    tag: PROFILE_TAG,
  });
  return { ...message, headers: [...headers, ["signature-input", fields.signatureInput], ["signature", fields.signature]], body };
}

function handle(gateway: Gateway, message: HttpMessageParts & { body: Buffer }, who = alice, readBody?: (limit: number) => Promise<Buffer>) {
  return gateway.handle({
    identity: who.identity,
    peerCertDer: who.der,
    message,
    readBody: readBody ?? (async (limit) => {
      if (message.body.length > limit) throw new PosternError("body-too-large");
      return message.body;
    }),
  });
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "accepted";
  } catch (error) {
    return error instanceof PosternError ? error.code : `unexpected: ${String(error)}`;
  }
}

t.test("a signed message is handed over once, with its route parameters, and answered 202 with its id", async (t) => {
  const { gateway, backend } = gatewayWith();
  const answer = await handle(gateway, signed());
  t.match(answer, { kind: "json", status: 202, body: { route: "messages" } });
  t.equal(backend.delivered.length, 1);
  const [{ message, claim }] = backend.delivered as [{ message: AcceptedMessage; claim: NonceClaim }];
  t.same(message.params, { topic: "orders" });
  t.equal((answer as unknown as { body: { id: string } }).body.id, message.messageId);
  t.equal(claim.client, alice.identity.fingerprint, "the nonce is the client's");
  t.equal(claim.expiresAtMs, (T0 / 1000 + 300 + 30 + 1) * 1000, "the claim outlives the signature's freshness window");
});

t.test("no route for the path: not-found; another method: method-not-allowed", async (t) => {
  const { gateway } = gatewayWith();
  t.equal(await codeOf(handle(gateway, signed(alice, { path: "/v2/elsewhere" }))), "not-found");
  t.equal(await codeOf(gateway.handle({ identity: alice.identity, peerCertDer: alice.der, message: { ...signed(), method: "PUT" }, readBody: async () => Buffer.alloc(0) })), "method-not-allowed");
});

t.test("an identity the route does not allow: forbidden, before the body is read", async (t) => {
  const { gateway, backend } = gatewayWith();
  let read = false;
  t.equal(await codeOf(handle(gateway, signed(mallory), mallory, async () => ((read = true), Buffer.alloc(0)))), "forbidden");
  t.notOk(read, "the body was never read");
  t.equal(backend.delivered.length, 0);
});

t.test("over the rate limit: rate-limited with a Retry-After", async (t) => {
  const { gateway, advance } = gatewayWith({ rateLimit: { requestsPerSecond: 1, burst: 1 } });
  t.equal(await codeOf(handle(gateway, signed())), "accepted");
  const refused = await handle(gateway, signed()).catch((e: PosternError) => e);
  t.equal((refused as PosternError).code, "rate-limited");
  t.equal((refused as PosternError).extensions.retryAfterSeconds, 1);
  advance(1000);
  t.equal(await codeOf(handle(gateway, signed())), "accepted", "a token comes back with the clock");
});

t.test("a content type the route does not take: unsupported-media-type", async (t) => {
  const { gateway } = gatewayWith();
  const message = signed();
  message.headers = message.headers.map(([k, v]) => (k === "content-type" ? [k, "text/plain"] : [k, v]));
  t.equal(await codeOf(handle(gateway, message)), "unsupported-media-type");
});

t.test("a body over the route's limit: body-too-large", async (t) => {
  const { gateway } = gatewayWith();
  t.equal(await codeOf(handle(gateway, signed(alice, { body: JSON.stringify({ pad: "x".repeat(100) }) }))), "body-too-large");
});

t.test("a body that is not the one the digest names: digest-mismatch", async (t) => {
  const { gateway } = gatewayWith();
  t.equal(await codeOf(handle(gateway, { ...signed(), body: Buffer.from('{"n":2}') })), "digest-mismatch");
});

t.test("a changed path: signature-invalid", async (t) => {
  const { gateway } = gatewayWith();
  t.equal(await codeOf(handle(gateway, { ...signed(), path: "/v1/messages/other" })), "signature-invalid");
});

t.test("a keyid that is not the TLS peer's certificate: key-mismatch", async (t) => {
  const { gateway } = gatewayWith();
  t.equal(await codeOf(handle(gateway, signed(alice, { keyid: certificateThumbprint(mallory.der) }))), "key-mismatch");
});

t.test("too old: stale; from the future: from-future", async (t) => {
  const { gateway } = gatewayWith();
  t.equal(await codeOf(handle(gateway, signed(alice, { createdMs: T0 - 331_000 }))), "stale");
  t.equal(await codeOf(handle(gateway, signed(alice, { createdMs: T0 + 31_000 }))), "from-future");
});

t.test("a malformed nonce: signature-profile", async (t) => {
  const { gateway } = gatewayWith();
  t.equal(await codeOf(handle(gateway, signed(alice, { nonce: "short" }))), "signature-profile");
});

t.test("the backend's verdict: replayed, or an exact re-send naming the original", async (t) => {
  const { gateway, backend } = gatewayWith();
  backend.answer = () => ({ kind: "replayed" });
  t.equal(await codeOf(handle(gateway, signed())), "replayed");
  backend.answer = () => ({ kind: "duplicate", messageId: "original-id" });
  const duplicate = (await handle(gateway, signed()).catch((e: PosternError) => e)) as PosternError;
  t.equal(duplicate.code, "replayed");
  t.equal(duplicate.extensions.messageId, "original-id");
});

t.test("the nonce fingerprint covers the target: one nonce on two topics is two different requests", async (t) => {
  const { gateway, backend } = gatewayWith();
  await handle(gateway, signed(alice, { nonce: "same-nonce-0123456789", path: "/v1/messages/a" }));
  await handle(gateway, signed(alice, { nonce: "same-nonce-0123456789", path: "/v1/messages/b" }));
  const [first, second] = backend.delivered;
  t.equal(first!.claim.nonce, second!.claim.nonce);
  t.not(first!.claim.digest, second!.claim.digest, "so the store refuses the second as a replay, not as 'already accepted'");
});

/** A backend encryption key and the sealing the gateway holds for it (public keys only). */
function sealingKey(): { sealing: BackendSealing; seal(body: string, path?: string, who?: typeof alice): Promise<string> } {
  const { privateKey } = generateKeyPairSync("x25519");
  const { kid } = privateKeyFromPem(privateKey.export({ type: "pkcs8", format: "pem" }) as string, "test");
  const keys = parseSealingJwks({ keys: [{ kty: "OKP", crv: "X25519", x: privateKey.export({ format: "jwk" }).x, kid, use: "enc", alg: "ECDH-ES+A256KW" }] });
  return {
    sealing: { keys, algorithms: ["ECDH-ES+A256KW"] },
    seal: async (body, path = "/v1/messages/orders", who = alice) =>
      (await sealPayload(Buffer.from(body), keys, { route: `POST ${path}`, sender: certificateThumbprint(who.der) })).jwe,
  };
}

t.test("sealed: required: a plaintext body is sealed-required before the body is read; a sealed one is handed over unchanged", async (t) => {
  const key = sealingKey();
  const { gateway, backend } = gatewayWith({ sealed: "required", maxBodyBytes: 4096 }, key.sealing);
  let read = false;
  t.equal(await codeOf(handle(gateway, signed(), alice, async () => ((read = true), Buffer.alloc(0)))), "sealed-required");
  t.notOk(read, "the body was never read");
  const jwe = await key.seal('{"n":1}');
  t.equal(await codeOf(handle(gateway, signed(alice, { body: jwe, contentType: "application/jose" }))), "accepted");
  t.equal(backend.delivered.length, 1);
  t.equal(backend.delivered[0]!.message.body.toString(), jwe, "the JWE as sent: the gateway does not decrypt");
  t.equal(backend.delivered[0]!.message.contentType, "application/jose");
});

t.test("sealed: a body sealed for another path, or another key, is refused and never handed over", async (t) => {
  const key = sealingKey();
  const { gateway, backend } = gatewayWith({ sealed: "allowed", maxBodyBytes: 4096 }, key.sealing);
  const moved = await key.seal('{"n":1}', "/v1/messages/elsewhere");
  t.equal(await codeOf(handle(gateway, signed(alice, { body: moved, contentType: "application/jose" }))), "sealed-binding");
  const foreign = await sealingKey().seal('{"n":1}');
  t.equal(await codeOf(handle(gateway, signed(alice, { body: foreign, contentType: "application/jose" }))), "sealed-key-unknown");
  t.equal(await codeOf(handle(gateway, signed(alice, { body: "{}", contentType: "application/jose" }))), "sealed-invalid");
  t.equal(backend.delivered.length, 0);
  t.equal(await codeOf(handle(gateway, signed())), "accepted", "allowed: plaintext still passes");
});

t.test("sealed: forbidden (the default): application/jose is only a content type, refused unless listed", async (t) => {
  const { gateway } = gatewayWith({ maxBodyBytes: 4096 });
  t.equal(await codeOf(handle(gateway, signed(alice, { body: "a.b.c.d.e", contentType: "application/jose" }))), "unsupported-media-type");
});
