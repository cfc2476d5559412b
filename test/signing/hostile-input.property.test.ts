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
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 4 }) },
);
const garbled = fc.array(piece, { maxLength: 40 }).map((parts) => parts.join(""));

/** A valid value cut, spliced or extended at a random place. */
function mutated(value: string) {
  return fc.tuple(fc.nat({ max: value.length }), fc.nat({ max: 8 }), fc.string({ unit: "binary", maxLength: 3 })).map(
    ([at, cut, insert]) => value.slice(0, at) + insert + value.slice(Math.min(value.length, at + cut)),
  );
}

const signatureInputValue = fc.oneof(garbled, mutated(valid.signatureInput), fc.constant(valid.signatureInput));
const signatureValue = fc.oneof(garbled, mutated(valid.signature), fc.constant(valid.signature));
const lines = (name: string, value: fc.Arbitrary<string>) =>
  fc.array(value, { minLength: 0, maxLength: 3 }).map((values) => values.map((v) => [name, v] as [string, string]));

const hostileMessage: fc.Arbitrary<HttpMessageParts> = fc
  .record({
    inputs: lines("Signature-Input", signatureInputValue),
    signatures: lines("Signature", signatureValue),
    extra: fc.array(fc.tuple(fc.constantFrom("Content-Type", "content-digest", "x", "Host", "signature"), garbled), { maxLength: 3 }),
    path: fc.oneof(fc.constant("/v1/messages/orders"), garbled),
    query: fc.oneof(fc.constant(""), garbled.map((q) => `?${q}`)),
    status: fc.option(fc.oneof(fc.integer(), fc.double()), { nil: undefined }),
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
