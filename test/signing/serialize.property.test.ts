/**
 * The signature serializer's quick path writes exactly what `structured-headers` writes, and
 * refuses exactly what it refuses, for any Inner List, Item or Parameters.
 */
import t from "tap";
import fc from "fast-check";
import { serializeInnerList as libraryInnerList, serializeItem as libraryItem, serializeParameters as libraryParameters, Token, type BareItem, type InnerList, type Item, type Parameters } from "structured-headers";
import { serializeInnerList, serializeItem, serializeParameters } from "../../src/signing/lib/serialize.js";

const bareItem: fc.Arbitrary<BareItem> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: "grapheme-ascii", maxLength: 12 }) },
  { weight: 2, arbitrary: fc.constantFrom("@method", "content-digest", "postern", "", 'a"b', "a\\b", "\u00e9", "\u0000", "\u007f") },
  { weight: 2, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.constantFrom(999_999_999_999_999, -999_999_999_999_999, 1_000_000_000_000_000, -0, 1.5, 0.0005, 1e20, Number.NaN) },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constantFrom(new Token("tok"), new Token("a:b/c"), new Uint8Array([1, 2, 3]).buffer, new Date(0)) },
);
const key = fc.oneof(fc.constantFrom("created", "keyid", "nonce", "tag", "alg", "req", "sf", "key", "name", "*x", "a.b-c_d"), fc.constantFrom("Bad", "1x", "", "a b", "é"));
const params: fc.Arbitrary<Parameters> = fc.array(fc.tuple(key, fc.oneof(bareItem, fc.constant(true as BareItem))), { maxLength: 5 }).map((entries) => new Map(entries));
const item: fc.Arbitrary<Item> = fc.tuple(bareItem, params);
const innerList: fc.Arbitrary<InnerList> = fc.tuple(fc.array(item, { maxLength: 8 }), params);

/** The text or the error class a serializer gives. */
function outcome(serialize: () => string): string {
  try {
    return `ok ${serialize()}`;
  } catch (error) {
    return `throws ${(error as Error).name}`;
  }
}

t.test("an Inner List serializes as the library does", async (t) => {
  fc.assert(fc.property(innerList, (list) => outcome(() => serializeInnerList(list)) === outcome(() => libraryInnerList(list))), { numRuns: 3000 });
  t.pass("3000 lists");
});

t.test("an Item and Parameters serialize as the library does", async (t) => {
  fc.assert(fc.property(item, (it) => outcome(() => serializeItem(it)) === outcome(() => libraryItem(it))), { numRuns: 3000 });
  fc.assert(fc.property(params, (p) => outcome(() => serializeParameters(p)) === outcome(() => libraryParameters(p))), { numRuns: 3000 });
  t.pass("3000 items and parameter sets");
});

t.test("what signatures hold takes the quick path and comes out as the RFC's examples", async (t) => {
  const list: InnerList = [
    [["@method", new Map()], ["@path", new Map()], ["example-dict", new Map<string, BareItem>([["key", "a"]])], ["content-type", new Map<string, BareItem>([["req", true]])]],
    new Map<string, BareItem>([["created", 1618884473], ["keyid", "test-key-ecc-p256"], ["nonce", "b3k2pp5k7z-50gnwp.yemd"]]),
  ];
  t.equal(serializeInnerList(list), '("@method" "@path" "example-dict";key="a" "content-type";req);created=1618884473;keyid="test-key-ecc-p256";nonce="b3k2pp5k7z-50gnwp.yemd"');
});
