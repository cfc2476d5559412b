import t from "tap";
import { matchesGlob, matchesIdentity } from "../../src/config/identity-pattern.js";

t.test("one syntax for identities everywhere: * within a segment, ** across", async (t) => {
  t.ok(matchesIdentity("spiffe://postern.local/client/demo", "spiffe://postern.local/client/*"));
  t.notOk(matchesIdentity("spiffe://postern.local/client/a/b", "spiffe://postern.local/client/*"), "* does not cross a /");
  t.ok(matchesIdentity("spiffe://postern.local/client/a/b", "spiffe://postern.local/client/**"));
  t.ok(matchesIdentity("spiffe://postern.local/client/demo", "spiffe://postern.local/client/demo"), "an exact identity");
  t.notOk(matchesIdentity("spiffe://postern.local/client/demo2", "spiffe://postern.local/client/demo"));
  t.ok(matchesIdentity("device-42", "device-*"), "a CN prefix within one segment");
  t.notOk(matchesIdentity("spiffe://x/client/.*", "spiffe://x/client/demo"), "regex characters match themselves");
  t.ok(matchesIdentity("spiffe://x/client/.*", "spiffe://x/client/.*"));
});

t.test("DNS names: * within a label", async (t) => {
  t.ok(matchesGlob("*.example.com", "api.example.com", "."));
  t.notOk(matchesGlob("*.example.com", "a.b.example.com", "."));
  t.ok(matchesGlob("**.example.com", "a.b.example.com", "."));
});
