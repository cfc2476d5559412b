import t from "tap";
import { dictionaryKeys, repeatedDictionaryKey } from "../../src/signing/lib/dictionary-keys.js";

t.test("keys of a Dictionary, in order, skipping strings, byte sequences and inner lists", async (t) => {
  t.same(dictionaryKeys("sha-256=:AAA=:, sha-512=:BBB=:"), ["sha-256", "sha-512"]);
  t.same(dictionaryKeys('sig1=("@method" "a,b=c");created=1;nonce="x, y=1", sig2=:a,b=:'), ["sig1", "sig2"]);
  t.same(dictionaryKeys("a=tok:en, b, c;x=1"), ["a", "b", "c"], "a token may hold a colon");
  t.same(dictionaryKeys('a="quote \\" , d=1", e=2'), ["a", "e"], "an escaped quote does not end the string");
});

t.test("a repeated key is found, a clean field has none", async (t) => {
  t.equal(repeatedDictionaryKey("sha-256=:AAA=:, sha-256=:BBB=:"), "sha-256");
  t.equal(repeatedDictionaryKey("sha-256=:AAA=:,sha-512=:B=:, sha-256=:C=:"), "sha-256");
  t.equal(repeatedDictionaryKey("sha-256=:AAA=:, sha-512=:BBB=:"), undefined);
});
