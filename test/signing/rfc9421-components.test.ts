import t from "tap";
import { buildSignatureBase, signMessage } from "../../src/signing/index.js";
import { partsFromRaw, privateKeyFor, vectors } from "./rfc9421-fixtures.js";

/** Base lines (without the @signature-params line) for one covered component. */
function linesFor(raw: string, identifier: string, scheme?: "http" | "https"): string[] | string {
  const result = buildSignatureBase(partsFromRaw(raw, scheme), `(${identifier})`);
  if (!result.ok) return result.code;
  return result.base.split("\n").slice(0, -1);
}

t.test("component examples of RFC 9421 sections 2.1 and 2.2 are reproduced", async (t) => {
  for (const example of vectors.component_examples) {
    if (example.expected_base_lines === undefined || example.message_raw === undefined) continue;
    // Absolute-form targets cannot be expressed as HttpMessageParts (path + query only).
    if (example.message_raw.startsWith("GET https://")) continue;
    for (const line of example.expected_base_lines) {
      const identifier = line.slice(0, line.indexOf(": "));
      t.same(linesFor(example.message_raw, identifier, example.scheme), [line], `${example.rfc_section} ${line}`);
    }
  }
});

t.test("@query when the request has no query is ?", async (t) => {
  t.same(linesFor("GET /path HTTP/1.1\nHost: www.example.com", '"@query"'), ['"@query": ?']);
});

t.test("the invalid un-encoded @query-param forms never appear in a base", async (t) => {
  const example = vectors.component_examples.find((e) => e.what.startsWith("INVALID"))!;
  const lines = linesFor(example.message_raw!, '"@query-param";name="var"');
  t.same(lines, ['"@query-param";name="var": this%20is%20a%20big%0Amultiline%20value']);
});

t.test("a repeated query parameter gives one base line per value, in order", async (t) => {
  t.same(linesFor("GET /p?a=1&b=2&a=3 HTTP/1.1\nHost: h", '"@query-param";name="a"'), [
    '"@query-param";name="a": 1',
    '"@query-param";name="a": 3',
  ]);
});

t.test("@authority is lowercased and loses a default port", async (t) => {
  t.same(linesFor("GET / HTTP/1.1\nHost: WWW.Example.COM:443", '"@authority"'), ['"@authority": www.example.com']);
  t.same(linesFor("GET / HTTP/1.1\nHost: example.com:8443", '"@authority"'), ['"@authority": example.com:8443']);
  t.same(linesFor("GET / HTTP/1.1\nHost: example.com:80", '"@authority"', "http"), ['"@authority": example.com']);
});

t.test("unresolvable components fail the whole base with a code", async (t) => {
  const raw = "POST /foo?a=1 HTTP/1.1\nHost: example.com\nExample-Dict: a=1, b=2\nX-Text: not (a dict";
  const cases: [string, string][] = [
    ['"x-absent"', "signature-invalid"],
    ['"example-dict";key="c"', "signature-invalid"],
    ['"@query-param";name="zz"', "signature-invalid"],
    ['"@status"', "bad-request"],
    ['"@method";req', "bad-request"],
    ['"@unknown"', "bad-request"],
    ['"@signature-params"', "bad-request"],
    ['"Host"', "bad-request"],
    ['"host";foo', "bad-request"],
    ['"host";bs;sf', "bad-request"],
    ['"host";sf=?0', "bad-request"],
    ['"@query-param"', "bad-request"],
    ['"x-text";key="a"', "bad-request"],
    ['"x-text";sf', "bad-request"],
    ['"host" "host"', "bad-request"],
    ["1", "bad-request"],
  ];
  for (const [identifier, code] of cases) {
    t.equal(linesFor(raw, identifier), code, identifier);
  }
  t.equal(linesFor("HTTP/1.1 200 OK\nDate: x", '"@method"'), "signature-invalid", "@method of a response");
});

t.test("the 2.3 @signature-params example keeps the signer's parameter order", async (t) => {
  const example = vectors.component_examples.find((e) => e.expected_value !== undefined)!;
  const parts = partsFromRaw("GET /path HTTP/1.1\nHost: www.example.com\nDate: x\nCache-Control: max-age=60");
  const signed = signMessage(parts, {
    key: privateKeyFor("test-key-rsa-pss"),
    keyid: "test-key-rsa-pss",
    components: ["@target-uri", "@authority", "date", "cache-control"],
    created: 1618884475,
    expires: 1618884775,
    includeAlg: true,
    paramOrder: ["keyid", "alg", "created", "expires"],
  });
  t.equal(signed.signatureInput, `sig1=${example.expected_value}`);
});
