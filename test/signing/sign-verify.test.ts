import t from "tap";
import { createSecretKey } from "node:crypto";
import {
  CLIENT_ALGORITHMS,
  PROFILE_COMPONENTS,
  signMessage,
  signRequest,
  verifyMessage,
  verifyRequest,
  type HttpMessageParts,
  type VerifyResult,
} from "../../src/signing/index.js";
import { PosternError } from "../../src/errors.js";
import {
  CREATED,
  NOW_MS,
  mintKey,
  profileRequest,
  signOptions,
  verifyOptions,
  withHeaders,
  type TestKey,
} from "./profile-helpers.js";

const keys: TestKey[] = CLIENT_ALGORITHMS.map(mintKey);
const ed = keys.find((k) => k.alg === "ed25519")!;
const p256 = keys.find((k) => k.alg === "ecdsa-p256-sha256")!;

const codeOf = (r: VerifyResult) => (r.ok ? "ok" : r.code);

function signed(key: TestKey, overrides: Parameters<typeof signOptions>[1] = {}, message = profileRequest()): HttpMessageParts {
  const fields = signMessage(message, signOptions(key, overrides));
  return withHeaders(message, [
    ["Signature-Input", fields.signatureInput],
    ["Signature", fields.signature],
  ]);
}

t.test("profile sign -> verify round trip for every client algorithm", async (t) => {
  for (const key of keys) {
    const result = verifyMessage(signed(key), verifyOptions(keys));
    t.same(
      result,
      {
        ok: true,
        label: "sig1",
        components: [...PROFILE_COMPONENTS],
        params: { created: CREATED, keyid: `kid-${key.alg}`, alg: key.alg, nonce: "n0nce-0123456789abcdef", tag: "postern" },
      },
      key.alg,
    );
  }
});

t.test("Signature-Input has the documented shape", async (t) => {
  const fields = signRequest(profileRequest(), signOptions(ed, { expires: CREATED + 60 }));
  t.equal(
    fields.signatureInput,
    `sig1=("@method" "@authority" "@path" "@query" "content-type" "content-digest");created=${CREATED};expires=${CREATED + 60};keyid="kid-ed25519";nonce="n0nce-0123456789abcdef";tag="postern"`,
  );
  t.match(fields.signature, /^sig1=:[A-Za-z0-9+/]{86}==:$/);
  t.equal(verifyRequest, verifyMessage);
});

t.test("an RSA-PSS key and an explicit alg parameter verify", async (t) => {
  const rsa = keys.find((k) => k.alg === "rsa-pss-sha512")!;
  t.equal(codeOf(verifyMessage(signed(rsa, { includeAlg: true }), verifyOptions(keys))), "ok");
});

t.test("tampering with a covered component -> signature-invalid", async (t) => {
  const message = signed(ed);
  const cases: [string, HttpMessageParts][] = [
    ["path", { ...message, path: "/v1/messages/refunds" }],
    ["method", { ...message, method: "PUT" }],
    ["authority", { ...message, authority: "other.example" }],
    ["query", { ...message, query: "?x=1" }],
    [
      "content-type",
      { ...message, headers: message.headers.map(([n, v]) => [n, n === "Content-Type" ? "text/plain" : v] as const) },
    ],
  ];
  for (const [name, tampered] of cases) t.equal(codeOf(verifyMessage(tampered, verifyOptions(keys))), "signature-invalid", name);
  const noType = { ...message, headers: message.headers.filter(([n]) => n !== "Content-Type") };
  t.equal(codeOf(verifyMessage(noType, verifyOptions(keys, { requiredComponents: [] }))), "signature-invalid", "covered field removed");
});

t.test("uncovered changes keep the signature valid; authority case and default port do not matter", async (t) => {
  const message = signed(ed);
  t.equal(codeOf(verifyMessage(withHeaders(message, [["X-Extra", "1"]]), verifyOptions(keys))), "ok");
  t.equal(codeOf(verifyMessage({ ...message, authority: "GATEWAY.example:8443" }, verifyOptions(keys))), "ok");
  const m443 = signed(ed, {}, { ...profileRequest(), authority: "gateway.example:443" });
  t.equal(codeOf(verifyMessage({ ...m443, authority: "gateway.example" }, verifyOptions(keys))), "ok");
});

t.test("profile refusals -> signature-profile", async (t) => {
  t.equal(codeOf(verifyMessage(signed(ed, { nonce: undefined }), verifyOptions(keys))), "signature-profile", "missing nonce");
  t.equal(codeOf(verifyMessage(signed(ed, { components: ["@method", "@path"] }), verifyOptions(keys))), "signature-profile", "few components");
  t.equal(
    codeOf(verifyMessage(signed(ed, { components: ["@method", "@path"] }), verifyOptions(keys, { requiredComponents: ["@method"], requiredParameters: [] }))),
    "ok",
    "a looser profile accepts it",
  );
  const hmacKey = createSecretKey(Buffer.alloc(32, 7));
  const hmac = signMessage(profileRequest(), { key: hmacKey, keyid: "kid-hmac", created: CREATED, nonce: "n0nce-0123456789abcdef", tag: "postern" });
  const hmacMessage = withHeaders(profileRequest(), [["Signature-Input", hmac.signatureInput], ["Signature", hmac.signature]]);
  const resolveHmac = () => ({ key: hmacKey });
  t.equal(codeOf(verifyMessage(hmacMessage, verifyOptions(keys, { resolveKey: resolveHmac }))), "signature-profile", "hmac never for clients");
  t.equal(
    codeOf(verifyMessage(hmacMessage, verifyOptions(keys, { resolveKey: resolveHmac, allowedAlgorithms: ["hmac-sha256"] }))),
    "ok",
    "hmac when explicitly allowed",
  );
  t.equal(
    codeOf(verifyMessage(signed(ed, { includeAlg: true }), verifyOptions(keys, { allowedAlgorithms: ["ecdsa-p256-sha256"] }))),
    "signature-profile",
    "alg parameter outside the allow-list",
  );
  t.equal(codeOf(verifyMessage(signed(ed, { keyid: "" }), verifyOptions(keys))), "key-mismatch", "empty keyid");
  const fields = signMessage(profileRequest(), signOptions(ed));
  const noKeyid = withHeaders(profileRequest(), [
    ["Signature-Input", fields.signatureInput.replace(';keyid="kid-ed25519"', "")],
    ["Signature", fields.signature],
  ]);
  t.equal(codeOf(verifyMessage(noKeyid, verifyOptions(keys, { requiredParameters: [] }))), "signature-profile", "no keyid at all");
});

t.test("alg disagreeing with the key -> signature-profile", async (t) => {
  const fields = signMessage(profileRequest(), signOptions(ed, { includeAlg: true }));
  // Claim ed25519 for the P-256 keyid: the parameter disagrees with the resolved key type.
  const forged = withHeaders(profileRequest(), [
    ["Signature-Input", fields.signatureInput.replace('keyid="kid-ed25519"', 'keyid="kid-ecdsa-p256-sha256"')],
    ["Signature", fields.signature],
  ]);
  t.equal(codeOf(verifyMessage(forged, verifyOptions(keys))), "signature-profile");
  const metadata = verifyOptions(keys, { resolveKey: () => ({ key: ed.publicKey, alg: "ecdsa-p256-sha256" }) });
  t.equal(codeOf(verifyMessage(signed(ed, { includeAlg: true }), metadata)), "signature-profile", "key metadata disagrees");
  t.equal(codeOf(verifyMessage(signed(ed), metadata)), "signature-profile", "key metadata unfit for the key");
});

t.test("unknown keyid -> key-mismatch", async (t) => {
  t.equal(codeOf(verifyMessage(signed(ed, { keyid: "someone-else" }), verifyOptions(keys))), "key-mismatch");
});

t.test("a signature by another key under a known keyid -> signature-invalid", async (t) => {
  const other = { ...mintKey("ed25519") };
  t.equal(codeOf(verifyMessage(signed(other, { keyid: "kid-ed25519" }), verifyOptions(keys))), "signature-invalid");
});

t.test("freshness: stale, from-future, expired, within skew", async (t) => {
  const at = (ms: number) => verifyOptions(keys, { now: () => ms });
  const message = signed(p256);
  t.equal(codeOf(verifyMessage(message, at(NOW_MS + 331_000))), "stale");
  t.equal(codeOf(verifyMessage(message, at(NOW_MS + 330_000))), "ok");
  t.equal(codeOf(verifyMessage(message, at(NOW_MS - 31_000))), "from-future");
  t.equal(codeOf(verifyMessage(message, at(NOW_MS - 30_000))), "ok");
  const expiring = signed(p256, { expires: CREATED + 10 });
  t.equal(codeOf(verifyMessage(expiring, at(NOW_MS + 40_000))), "ok", "expired within skew");
  t.equal(codeOf(verifyMessage(expiring, at(NOW_MS + 41_000))), "stale", "expired beyond skew");
  t.equal(codeOf(verifyMessage(message, at(Number.NaN))), "internal", "a broken clock fails closed");
});

t.test("a stale signature that is also forged reports signature-invalid (crypto before freshness)", async (t) => {
  const message = signed(ed);
  t.equal(codeOf(verifyMessage({ ...message, path: "/x" }, verifyOptions(keys, { now: () => NOW_MS + 10_000_000 }))), "signature-invalid");
});

t.test("duplicate header line of a covered field -> bad-request", async (t) => {
  const message = signed(ed);
  t.equal(codeOf(verifyMessage(withHeaders(message, [["content-type", "application/json"]]), verifyOptions(keys))), "bad-request");
  const twice = signed(ed, {}, withHeaders(profileRequest(), [["Content-Type", "text/plain"]]));
  t.equal(codeOf(verifyMessage(twice, verifyOptions(keys))), "bad-request", "even when the signer covered both lines");
  t.equal(codeOf(verifyMessage(twice, verifyOptions(keys, { rejectDuplicateFields: false }))), "ok", "RFC combination when allowed");
  t.equal(codeOf(verifyMessage(withHeaders(message, [["X-Other", "1"], ["x-other", "2"]]), verifyOptions(keys))), "ok", "uncovered duplicates are fine");
});

t.test("several signatures: chosen by tag", async (t) => {
  const base = profileRequest();
  const client = signMessage(base, signOptions(ed));
  const proxy = signMessage(base, signOptions(p256, { label: "proxy", tag: "postern-forward", components: ["@method", "@path"] }));
  const message = withHeaders(base, [
    ["Signature-Input", client.signatureInput],
    ["Signature-Input", proxy.signatureInput],
    ["Signature", `${proxy.signature}, ${client.signature}`],
  ]);
  const client_ = verifyMessage(message, verifyOptions(keys));
  t.equal(client_.ok && client_.label, "sig1");
  const forward = verifyMessage(message, verifyOptions(keys, { tag: "postern-forward", requiredComponents: ["@method"] }));
  t.equal(forward.ok && forward.label, "proxy");
  t.equal(codeOf(verifyMessage(message, verifyOptions(keys, { tag: "other" }))), "signature-missing", "no such tag");
  t.equal(codeOf(verifyMessage(message, verifyOptions(keys, { tag: undefined }))), "signature-missing", "ambiguous without tag");
  const two = signMessage(base, signOptions(p256, { label: "sig2" }));
  const clash = withHeaders(message, [["Signature-Input", two.signatureInput], ["Signature", two.signature]]);
  t.equal(codeOf(verifyMessage(clash, verifyOptions(keys))), "bad-request", "two signatures with the same tag");
  t.equal(codeOf(verifyMessage(clash, verifyOptions(keys, { label: "sig2" }))), "ok", "label disambiguates");
});

t.test("missing signature fields -> signature-missing", async (t) => {
  const message = signed(ed);
  const without = (name: string) => ({ ...message, headers: message.headers.filter(([n]) => n !== name) });
  t.equal(codeOf(verifyMessage(profileRequest(), verifyOptions(keys))), "signature-missing");
  t.equal(codeOf(verifyMessage(without("Signature"), verifyOptions(keys))), "signature-missing");
  t.equal(codeOf(verifyMessage(without("Signature-Input"), verifyOptions(keys))), "signature-missing");
  const relabelled = { ...message, headers: message.headers.map(([n, v]) => [n, n === "Signature" ? v.replace("sig1=", "sig9=") : v] as const) };
  t.equal(codeOf(verifyMessage(relabelled, verifyOptions(keys))), "signature-missing", "Signature lacks the chosen label");
});

t.test("malformed signature parameters -> bad-request", async (t) => {
  const fields = signMessage(profileRequest(), signOptions(ed));
  const variants: [string, string, string][] = [
    ["decimal created", fields.signatureInput.replace(`created=${CREATED}`, `created=${CREATED}.5`), fields.signature],
    ["string created", fields.signatureInput.replace(`created=${CREATED}`, `created="${CREATED}"`), fields.signature],
    ["token keyid", fields.signatureInput.replace('keyid="kid-ed25519"', "keyid=kid"), fields.signature],
    ["token signature", fields.signatureInput, "sig1=abc"],
    ["item input", 'sig1="@method";created=1', fields.signature],
    ["non-ASCII", fields.signatureInput.replace("n0nce", "n\u00f6nce"), fields.signature],
    ["control char", fields.signatureInput.replace("n0nce", "n\u0001nce"), fields.signature],
    ["truncated", fields.signatureInput.slice(0, 40), fields.signature],
    ["oversized", `${fields.signatureInput}, ${"x".repeat(9000)}=()`, fields.signature],
    ["component not a string", fields.signatureInput.replace('"@method"', "method"), fields.signature],
  ];
  for (const [name, input, signature] of variants) {
    const message = withHeaders(profileRequest(), [["Signature-Input", input], ["Signature", signature]]);
    t.equal(codeOf(verifyMessage(message, verifyOptions(keys))), "bad-request", name);
  }
});

t.test("non-ASCII in a covered derived component -> bad-request", async (t) => {
  t.equal(codeOf(verifyMessage({ ...signed(ed), path: "/v1/m\u00e9ssages" }, verifyOptions(keys))), "bad-request");
});

t.test("responses: @status and ;req components bind a response to its request", async (t) => {
  const request = signed(ed);
  const response: HttpMessageParts = { ...profileRequest(), method: "", path: "", status: 202, headers: [["Content-Type", "application/json"]] };
  const opts = { components: ["@status", "content-type", "@method;req", "@path;req", "signature;req;key=\"sig1\""], request, nonce: undefined };
  const fields = signMessage(response, signOptions(p256, opts));
  const message = withHeaders(response, [["Signature-Input", fields.signatureInput], ["Signature", fields.signature]]);
  const loose = verifyOptions(keys, { requiredComponents: ["@status"], requiredParameters: ["created"], request });
  t.equal(codeOf(verifyMessage(message, loose)), "ok");
  t.equal(codeOf(verifyMessage(message, { ...loose, request: { ...request, path: "/other" } })), "signature-invalid", "other request");
  t.equal(codeOf(verifyMessage(message, { ...loose, request: undefined })), "signature-invalid", "no request");
});

t.test("signing misuse throws PosternError", async (t) => {
  const throwsCode = (fn: () => unknown, code: string, name: string) => {
    try {
      fn();
      t.fail(name);
    } catch (error) {
      t.ok(error instanceof PosternError && error.code === code, name);
    }
  };
  const request = profileRequest();
  throwsCode(() => signMessage(request, signOptions(ed, { alg: "ecdsa-p256-sha256" })), "internal", "key unfit for alg");
  throwsCode(() => signMessage(request, signOptions(ed, { label: "Sig 1" })), "internal", "bad label");
  throwsCode(() => signMessage(request, signOptions(ed, { nonce: "caf\u00e9" })), "internal", "non-ASCII nonce");
  throwsCode(() => signMessage(request, signOptions(ed, { created: 1.5 })), "internal", "non-integer created");
  throwsCode(() => signMessage(request, signOptions(ed, { components: ["@bogus"] })), "internal", "unknown component");
  throwsCode(() => signMessage(request, signOptions(ed, { components: ["x-absent"] })), "bad-request", "absent field");
});
