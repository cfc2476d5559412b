import t from "tap";
import { readStoredEntry, storedEntryLine } from "../../src/forward/stored-entry.js";

const claim = { key: "{b}:nonce:fp:abc", digest: 'sha-256=:x:, weird="quoted", ,"claim":{', expiresAtMs: 1_700_000_300_000, messageId: "m-1" };

t.test("a stored line keeps the signed fields apart from the claim, and the claim reads back from its end", async (t) => {
  const fields = { "message-id": "m-1", body: Buffer.from('{"claim":{"key":"forged"}}, ,"claim":{"key":"x"}').toString("base64"), note: ',"claim":{"key":"in a field"}}' };
  const line = storedEntryLine("1700000000000-3", fields, claim);
  t.ok(line.endsWith("}\n"));
  const parsed = JSON.parse(line);
  t.same(Object.keys(parsed), ["id", "bodyEncoding", "fields", "claim"]);
  t.same(parsed.fields, fields, "the fields are exactly the signed entry");
  t.same(readStoredEntry(Buffer.from(line.trimEnd())), { id: "1700000000000-3", idMs: 1_700_000_000_000, claim });
});

t.test("lines written before claims were stored, and foreign lines", async (t) => {
  const old = JSON.stringify({ id: "5-0", bodyEncoding: "base64", fields: { body: "e30=" } });
  t.same(readStoredEntry(Buffer.from(old)), { id: "5-0", idMs: 5 });
  t.equal(readStoredEntry(Buffer.from('{"other":1}')), undefined);
  t.equal(readStoredEntry(Buffer.from("")), undefined);
  const broken = '{"id":"7-1","fields":{},"claim":{"key":1}}';
  t.same(readStoredEntry(Buffer.from(broken)), { id: "7-1", idMs: 7 }, "a claim of the wrong shape is ignored");
});
