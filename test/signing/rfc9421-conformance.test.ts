import t from "tap";
import {
  SIGNATURE_ALGORITHMS,
  buildSignatureBase,
  signMessage,
  verifyMessage,
  type HttpMessageParts,
  type SignatureAlgorithm,
  type VerifyOptions,
} from "../../src/signing/index.js";
import {
  messageNamed,
  partsOf,
  privateKeyFor,
  publicKeyFor,
  vectors,
  type VectorCase,
} from "./rfc9421-fixtures.js";

const verifyOptionsFor = (c: VectorCase, extra: Partial<VerifyOptions> = {}): VerifyOptions => ({
  resolveKey: (keyid) => (keyid === c.keyid ? { key: publicKeyFor(keyid) } : undefined),
  now: () => Number(c.signature_params.created) * 1000,
  maxAgeSeconds: 300,
  clockSkewSeconds: 30,
  allowedAlgorithms: SIGNATURE_ALGORITHMS,
  rejectDuplicateFields: false,
  label: c.label,
  ...extra,
});

function relatedRequest(c: VectorCase): HttpMessageParts | undefined {
  return c.related_request === undefined ? undefined : partsOf(messageNamed(c.related_request));
}

/** The case's message with its signature added, unless the message already carries it. */
function signedMessage(c: VectorCase): HttpMessageParts {
  const message = messageNamed(c.message);
  const carries = message.headers.some(([name, value]) => name === "Signature" && value === c.signature_field);
  return partsOf(message, carries ? [] : [["Signature-Input", c.signature_input_field], ["Signature", c.signature_field]]);
}

t.test("every case: the signature base is reproduced exactly", async (t) => {
  for (const c of vectors.cases) {
    const result = buildSignatureBase(partsOf(messageNamed(c.message)), c.signature_params_serialized, {
      request: relatedRequest(c),
    });
    t.same(result, { ok: true, base: c.expected_signature_base }, c.id);
  }
});

t.test("every case: signing reproduces Signature-Input, and deterministic algorithms the signature", async (t) => {
  for (const c of vectors.cases) {
    const { created, expires, keyid, nonce, tag } = c.signature_params;
    const signed = signMessage(partsOf(messageNamed(c.message)), {
      key: privateKeyFor(c.keyid),
      alg: c.algorithm as SignatureAlgorithm,
      keyid: String(keyid),
      label: c.label,
      components: c.covered_components,
      created: Number(created),
      ...(expires !== undefined && { expires: Number(expires) }),
      ...(nonce !== undefined && { nonce: String(nonce) }),
      ...(tag !== undefined && { tag: String(tag) }),
      includeAlg: c.alg_param_present,
      paramOrder: Object.keys(c.signature_params),
      request: relatedRequest(c),
    });
    t.equal(signed.signatureInput, c.signature_input_field, `${c.id} Signature-Input`);
    if (c.deterministic) {
      t.equal(signed.signature, c.signature_field, `${c.id} signature byte for byte`);
    } else {
      const fresh = partsOf(messageNamed(c.message), [
        ["Signature-Input", signed.signatureInput],
        ["Signature", signed.signature],
      ]);
      const verified = verifyMessage(fresh, verifyOptionsFor(c, { request: relatedRequest(c) }));
      t.equal(verified.ok, true, `${c.id} fresh signature verifies`);
    }
  }
});

t.test("every case: the RFC signature verifies with an injected 2021 clock", async (t) => {
  for (const c of vectors.cases) {
    const result = verifyMessage(signedMessage(c), verifyOptionsFor(c, { request: relatedRequest(c) }));
    t.equal(result.ok, c.expect_valid, c.id);
    if (result.ok) {
      t.equal(result.label, c.label);
      t.equal(result.params.alg, c.algorithm, `${c.id} algorithm`);
      t.equal(result.params.keyid, c.keyid);
    }
  }
});

t.test("B.4 transformations verify or fail as the RFC states", async (t) => {
  const c = vectors.cases.find((x) => x.id === "B.4-transform");
  t.ok(c);
  for (let i = 1; i <= 6; i++) {
    const message = messageNamed(`bB.4-transform-${i}`);
    const result = verifyMessage(partsOf(message), verifyOptionsFor(c!));
    if (message.expect_valid) t.same(result.ok, true, `transform-${i} valid`);
    else t.same(result, { ok: false, code: "signature-invalid", detail: result.ok ? "" : result.detail }, `transform-${i} invalid`);
  }
});

t.test("B.4 original with two Accept lines is refused under the default duplicate policy", async (t) => {
  const c = vectors.cases.find((x) => x.id === "B.4-transform")!;
  const result = verifyMessage(partsOf(messageNamed("bB.4-transform-1")), verifyOptionsFor(c, { rejectDuplicateFields: undefined }));
  t.equal(result.ok ? "ok" : result.code, "bad-request");
});

t.test("the RFC signature fails once clocks move beyond the window", async (t) => {
  const c = vectors.cases.find((x) => x.id === "B.2.6")!;
  const created = Number(c.signature_params.created) * 1000;
  const late = verifyMessage(signedMessage(c), verifyOptionsFor(c, { now: () => created + 331_000 }));
  t.equal(late.ok ? "ok" : late.code, "stale");
  const early = verifyMessage(signedMessage(c), verifyOptionsFor(c, { now: () => created - 31_000 }));
  t.equal(early.ok ? "ok" : early.code, "from-future");
  const edge = verifyMessage(signedMessage(c), verifyOptionsFor(c, { now: () => created + 330_000 }));
  t.equal(edge.ok, true, "exactly maxAge + skew old is still accepted");
});

t.test("hmac and rsa-v1_5 vectors are refused under the default client algorithms", async (t) => {
  for (const algorithm of ["hmac-sha256", "rsa-v1_5-sha256"]) {
    const c = vectors.cases.find((x) => x.algorithm === algorithm)!;
    const result = verifyMessage(signedMessage(c), verifyOptionsFor(c, { allowedAlgorithms: undefined }));
    t.equal(result.ok ? "ok" : result.code, "signature-profile", c.id);
  }
});
