import t from "tap";
import fc from "fast-check";
import { isErrorCode } from "../../src/errors.js";
import {
  SIGNATURE_ALGORITHMS,
  buildSignatureBase,
  signMessage,
  verifyContentDigest,
  verifyMessage,
  type HttpMessageParts,
} from "../../src/signing/index.js";
import { CREATED, mintKey, profileRequest, signOptions, verifyOptions, withHeaders } from "./profile-helpers.js";

const ed = mintKey("ed25519");
const valid = signMessage(profileRequest(), signOptions(ed));

/** Pieces of Signature-Input / Signature / Content-Digest syntax, good and bad, to glue together. */
const piece = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(
    "sig1", "sig2", "=", "(", ")", '"@method"', '"@authority"', '"@path"', '"@query"', '"@status"', '"content-type"',
    '"content-digest"', '"@query-param";name="a"', '"@method";req', '"signature";key="sig1"', '"x";sf', '"x";bs', '"x";tr',
    '"content-type";key="a"', ";created=", ";expires=", ';keyid="kid-ed25519"', ';nonce="', ';tag="postern"', ';alg="ed25519"',
    ';alg="hmac-sha256"', ';alg=ed25519', String(CREATED), "-1", "1.5", "9999999999999999", ":", "AAAA", "==", ", ", ",", " ",
    "\t", '"', "\\", "?1", "@1", '%"a"', ";", "*", "sha-256=", "sha-512=", "md5=", ":X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
  ) },
  { weight: 1, arbitrary: fc.constantFrom("\u00e9", "\u0000", "\r\n", "\n ", "\ud800", "\u{1f4a5}", "\u007f", "\u00ff") },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme-ascii", maxLength: 4 }) },
);
const noise = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: "grapheme-ascii", maxLength: 3 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 2 }) },
);
const garbled = fc.array(piece, { maxLength: 40 }).map((parts) => parts.join(""));

/** A valid value cut, spliced or extended at a random place. */
function mutated(value: string) {
  return fc.tuple(fc.nat({ max: value.length }), fc.nat({ max: 8 }), noise).map(
    ([at, cut, insert]) => value.slice(0, at) + insert + value.slice(Math.min(value.length, at + cut)),
  );
}

const signatureInputValue = fc.oneof(garbled, mutated(valid.signatureInput), mutated(valid.signatureInput), fc.constant(valid.signatureInput));
const signatureValue = fc.oneof(garbled, mutated(valid.signature), fc.constant(valid.signature), fc.constant(valid.signature));
const lines = (name: string, value: fc.Arbitrary<string>) =>
  fc.oneof(
    { weight: 1, arbitrary: fc.array(value, { maxLength: 3 }) },
    { weight: 4, arbitrary: value.map((v) => [v]) },
  ).map((values) => values.map((v) => [name, v] as [string, string]));

const hostileMessage: fc.Arbitrary<HttpMessageParts> = fc
  .record({
    inputs: lines("Signature-Input", signatureInputValue),
    signatures: lines("Signature", signatureValue),
    extra: fc.oneof(
      fc.constant([]),
      fc.array(fc.tuple(fc.constantFrom("Content-Type", "content-digest", "x", "Host", "signature"), garbled), { maxLength: 2 }),
    ),
    path: fc.oneof({ weight: 3, arbitrary: fc.constant("/v1/messages/orders") }, { weight: 1, arbitrary: garbled }),
    query: fc.oneof({ weight: 3, arbitrary: fc.constant("") }, { weight: 1, arbitrary: garbled.map((q) => `?${q}`) }),
    status: fc.option(fc.oneof(fc.integer(), fc.double()), { nil: undefined, freq: 8 }),
  })
  .map(({ inputs, signatures, extra, path, query, status }) => ({
    ...withHeaders(profileRequest(), [...inputs, ...extra, ...signatures]),
    path,
    query,
    ...(status !== undefined && { status }),
  }));

const options = fc.record({
  tag: fc.option(fc.constantFrom("postern", "other"), { nil: undefined }),
  strict: fc.boolean(),
  known: fc.boolean(),
  anyAlg: fc.boolean(),
});

function assertCoded(result: { ok: boolean; code?: unknown; detail?: unknown }): boolean {
  return result.ok || (isErrorCode(result.code) && typeof result.detail === "string");
}

t.test("garbled, truncated, duplicated and non-ASCII signature fields never throw and always give a code", async (t) => {
  fc.assert(
    fc.property(hostileMessage, options, (message, { tag, strict, known, anyAlg }) => {
      const result = verifyMessage(
        message,
        verifyOptions([ed], {
          tag,
          resolveKey: () => (known ? { key: ed.publicKey } : undefined),
          ...(strict ? {} : { requiredComponents: [], requiredParameters: [] }),
          ...(anyAlg && { allowedAlgorithms: SIGNATURE_ALGORITHMS }),
        }),
      );
      return assertCoded(result);
    }),
    { numRuns: 1500 },
  );
  t.pass("1500 hostile messages");
});

t.test("well-formed Signature-Input with hostile components, parameters and signatures gives a code", async (t) => {
  const component = fc.constantFrom(
    '"@method"', '"@authority"', '"@path"', '"@query"', '"@target-uri"', '"@scheme"', '"@request-target"', '"@status"',
    '"@query-param";name="a"', '"@query-param";name="b"', '"@query-param"', '"content-type"', '"content-digest";sf',
    '"content-digest";key="sha-256"', '"content-digest";key="sha-512"', '"content-digest";bs', '"x-missing"', '"host";req',
    '"Host"', '"@bogus"', '"content-type";tr', '"content-type";key="a"', '"content-length";sf', '"signature";key="sig1"',
    '"@signature-params"', '"content-type";sf=?0', "1", "tok", '"@method";name="a"',
  );
  const integer = fc.oneof(
    { weight: 5, arbitrary: fc.integer({ min: CREATED - 400, max: CREATED + 60 }) },
    { weight: 1, arbitrary: fc.constantFrom<number | string>(-1, 0, 1e15 - 1, 1.5, '"1"') },
  );
  const oneOf = (good: string, ...bad: string[]) =>
    fc.oneof({ weight: 5, arbitrary: fc.constant(good) }, { weight: 1, arbitrary: fc.constantFrom(...bad) });
  const params = fc.record(
    {
      created: integer,
      expires: integer,
      keyid: oneOf('"kid-ed25519"', '"other"', "kid", '""'),
      alg: oneOf('"ed25519"', '"hmac-sha256"', '"rsa-v1_5-sha256"', '"ecdsa-p256-sha256"', '"bogus"', "ed25519"),
      nonce: oneOf('"n0nce-0123456789abcdef"', '""', "?1"),
      tag: oneOf('"postern"', '"other"', "postern"),
      extra: fc.constantFrom("?1", '"x"', ":AA==:"),
    },
    { requiredKeys: [] },
  );
  const message = fc
    .record({
      components: fc.array(component, { maxLength: 6 }),
      params,
      signature: fc.oneof(fc.uint8Array({ maxLength: 96 }), fc.constant(new Uint8Array(64))),
      query: fc.constantFrom("", "?a=1", "?a=1&a=2&b=%ZZ", "?b=%C3%A9+x"),
      status: fc.option(fc.constantFrom(200, 0, 1234), { nil: undefined, freq: 5 }),
    })
    .map(({ components, params, signature, query, status }) => {
      const input = `sig1=(${components.join(" ")})${Object.entries(params).map(([k, v]) => `;${k}=${v}`).join("")}`;
      return {
        ...withHeaders(profileRequest(), [
          ["Signature-Input", input],
          ["Signature", `sig1=:${Buffer.from(signature).toString("base64")}:`],
        ]),
        query,
        ...(status !== undefined && { status }),
      };
    });
  fc.assert(
    fc.property(message, options, (m, { strict, anyAlg }) =>
      assertCoded(
        verifyMessage(m, {
          ...verifyOptions([ed], { tag: undefined, resolveKey: (keyid) => (keyid === "kid-ed25519" ? { key: ed.publicKey } : undefined) }),
          ...(strict ? {} : { requiredComponents: [], requiredParameters: [] }),
          ...(anyAlg && { allowedAlgorithms: SIGNATURE_ALGORITHMS }),
          request: profileRequest(),
        }),
      ),
    ),
    { numRuns: 1500 },
  );
  t.pass("1500 structured hostile messages");
});

t.test("huge signature fields are refused as bad-request without parsing them", async (t) => {
  const huge = `sig1=(${'"a" '.repeat(5000)})`;
  const message = withHeaders(profileRequest(), [["Signature-Input", huge], ["Signature", valid.signature]]);
  const started = performance.now();
  const result = verifyMessage(message, verifyOptions([ed]));
  t.equal(result.ok ? "ok" : result.code, "bad-request");
  const many = withHeaders(profileRequest(), Array.from({ length: 2000 }, () => ["Signature-Input", valid.signatureInput] as [string, string]));
  const second = verifyMessage(many, verifyOptions([ed]));
  t.equal(second.ok ? "ok" : second.code, "bad-request");
  t.ok(performance.now() - started < 500, "fast");
});

t.test("buildSignatureBase never throws on garbled signature parameters", async (t) => {
  fc.assert(
    fc.property(garbled, hostileMessage, (params, message) => assertCoded(buildSignatureBase(message, params))),
    { numRuns: 1000 },
  );
  t.pass();
});

t.test("garbled Content-Digest never throws and gives a digest code", async (t) => {
  const digestCodes = new Set(["bad-request", "digest-missing", "digest-mismatch"]);
  const digest = fc.oneof(garbled, mutated(`sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:`), fc.string({ unit: "binary" }));
  fc.assert(
    fc.property(fc.array(digest, { maxLength: 4 }), fc.uint8Array({ maxLength: 64 }), (values, body) => {
      const result = verifyContentDigest(values, body);
      return result.ok ? result.algorithms.length > 0 : digestCodes.has(result.code);
    }),
    { numRuns: 1500 },
  );
  t.pass();
});

t.test("any profile request signed by the client verifies; any change to the signature does not", async (t) => {
  const nonce = fc.stringMatching(/^[A-Za-z0-9._~-]{16,128}$/);
  const path = fc.stringMatching(/^\/[A-Za-z0-9._~%/-]{0,40}$/);
  const query = fc.oneof(fc.constant(""), fc.stringMatching(/^\?[A-Za-z0-9=&%+._-]{0,40}$/));
  fc.assert(
    fc.property(nonce, path, query, fc.integer({ min: -30, max: 330 }), fc.nat(), (n, p, q, ageSeconds, flip) => {
      const message = { ...profileRequest(), path: p, query: q };
      const fields = signMessage(message, signOptions(ed, { nonce: n, created: CREATED - ageSeconds }));
      const good = verifyMessage(withHeaders(message, [["Signature-Input", fields.signatureInput], ["Signature", fields.signature]]), verifyOptions([ed]));
      const bytes = Buffer.from(fields.signature.slice(6, -1), "base64");
      bytes[flip % bytes.length]! ^= 1 << flip % 8;
      const bad = verifyMessage(
        withHeaders(message, [["Signature-Input", fields.signatureInput], ["Signature", `sig1=:${bytes.toString("base64")}:`]]),
        verifyOptions([ed]),
      );
      return good.ok && good.params.nonce === n && !bad.ok && bad.code === "signature-invalid";
    }),
    { numRuns: 300 },
  );
  t.pass("300 signed requests")
});
