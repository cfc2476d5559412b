import { generateKeyPairSync } from "node:crypto";
import t from "tap";
import type { AcceptedMessage } from "../../src/forward/backend.js";
import { buildUpstreamRequest, FORWARD_LABEL } from "../../src/forward/http-request.js";
import { FORWARD_COMPONENTS } from "../../src/forward/stream-entry.js";
import { createContentDigest, FORWARD_TAG, verifyMessage } from "../../src/signing/index.js";

const { privateKey, publicKey } = generateKeyPairSync("ed25519");
const signer = { key: privateKey, keyid: "k1" };
const nowMs = 1_700_000_000_500;

function accepted(overrides: Partial<AcceptedMessage> = {}): AcceptedMessage {
  const body = Buffer.from('{"a":1}');
  return {
    messageId: "0b8f7c4e-1111-4222-8333-944455556666",
    route: "r",
    params: {},
    identity: { id: "spiffe://org/svc", roles: ["client"], serial: "0a", fingerprint: "fp", notAfterMs: 0 },
    clientCertDer: Buffer.from([1, 2, 3]),
    method: "POST",
    authority: "gateway.example:8443",
    path: "/v1/messages/x",
    query: "?q=1",
    contentType: "application/json",
    contentDigest: createContentDigest(body, "sha-256"),
    body,
    receivedAtMs: nowMs,
    ...overrides,
  };
}

t.test("the request is signed over the upstream's own authority, path and query", async (t) => {
  const base = new URL("https://upstream.internal:9443/in");
  const request = buildUpstreamRequest(accepted(), { base, identityHeaders: { "x-postern-identity": "id" }, signer, nowMs });
  t.equal(request.path, "/in/v1/messages/x?q=1");
  t.same(Object.keys(request.headers).sort(), [
    "client-cert", "content-digest", "content-type", "signature", "signature-input", "x-postern-identity", "x-postern-message-id",
  ]);
  t.equal(request.headers["client-cert"], ":AQID:");
  t.match(request.headers["signature-input"], new RegExp(`^${FORWARD_LABEL}=\\(`));
  t.match(request.headers["signature-input"], /;created=1700000000;expires=1700000060;keyid="k1";nonce="0b8f7c4e-1111-4222-8333-944455556666";tag="postern-forward"$/);
  const parts = {
    method: "POST",
    scheme: "https" as const,
    authority: "upstream.internal:9443",
    path: "/in/v1/messages/x",
    query: "?q=1",
    headers: Object.entries(request.headers),
  };
  const options = {
    resolveKey: (keyid: string) => (keyid === "k1" ? { key: publicKey } : undefined),
    now: () => nowMs,
    maxAgeSeconds: 60,
    clockSkewSeconds: 0,
    tag: FORWARD_TAG,
    requiredComponents: FORWARD_COMPONENTS,
  };
  t.ok(verifyMessage(parts, options).ok);
  t.notOk(verifyMessage({ ...parts, authority: "gateway.example:8443" }, options).ok, "the gateway's authority is not what was signed");
  t.notOk(verifyMessage({ ...parts, path: "/v1/messages/x" }, options).ok, "nor the path without the base prefix");
});

t.test("GET without a body sends none; other methods send theirs", async (t) => {
  const base = new URL("http://u");
  const get = buildUpstreamRequest(accepted({ method: "GET", body: Buffer.alloc(0) }), { base, identityHeaders: {}, signer, nowMs });
  t.equal(get.body, undefined);
  const del = buildUpstreamRequest(accepted({ method: "DELETE", body: Buffer.alloc(0) }), { base, identityHeaders: {}, signer, nowMs });
  t.same(del.body, Buffer.alloc(0));
});
