import t from "tap";
import { createContentDigest, verifyContentDigest } from "../../src/signing/index.js";

// RFC 9530 §2 and Appendix B examples: the body {"hello": "world"}.
const HELLO = Buffer.from('{"hello": "world"}');
const HELLO_SHA256 = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:";
const HELLO_SHA512 = "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:";
// RFC 9530 Appendix B.1: an empty body.
const EMPTY_SHA256 = "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:";

const codeOf = (r: ReturnType<typeof verifyContentDigest>) => (r.ok ? "ok" : r.code);

t.test("createContentDigest matches the RFC 9530 examples", async (t) => {
  t.equal(createContentDigest(HELLO), HELLO_SHA256);
  t.equal(createContentDigest(HELLO, "sha-256"), HELLO_SHA256);
  t.equal(createContentDigest(HELLO, "sha-512"), HELLO_SHA512);
  t.equal(createContentDigest(new Uint8Array()), EMPTY_SHA256);
});

t.test("every active algorithm present must match", async (t) => {
  t.same(verifyContentDigest([HELLO_SHA256], HELLO), { ok: true, algorithms: ["sha-256"] });
  t.same(verifyContentDigest([HELLO_SHA512], HELLO), { ok: true, algorithms: ["sha-512"] });
  t.same(verifyContentDigest([`${HELLO_SHA512}, ${HELLO_SHA256}`], HELLO), { ok: true, algorithms: ["sha-256", "sha-512"] });
  t.same(verifyContentDigest([HELLO_SHA256, HELLO_SHA512], HELLO), { ok: true, algorithms: ["sha-256", "sha-512"] }, "two lines");
  t.same(verifyContentDigest([EMPTY_SHA256], new Uint8Array()), { ok: true, algorithms: ["sha-256"] });
  const badSha512 = "sha-512=:" + Buffer.alloc(64).toString("base64") + ":";
  t.equal(codeOf(verifyContentDigest([`${HELLO_SHA256}, ${badSha512}`], HELLO)), "digest-mismatch", "one good, one bad");
});

t.test("mismatches", async (t) => {
  t.equal(codeOf(verifyContentDigest([HELLO_SHA256], Buffer.from('{"hello": "world!"}'))), "digest-mismatch");
  t.equal(codeOf(verifyContentDigest(["sha-256=:AAAA:"], HELLO)), "digest-mismatch", "wrong length");
  t.equal(codeOf(verifyContentDigest(["sha-256=::"], HELLO)), "digest-mismatch", "empty digest");
  t.equal(codeOf(verifyContentDigest([HELLO_SHA512.replace("sha-512", "sha-256")], HELLO)), "digest-mismatch", "sha-512 bytes as sha-256");
});

t.test("deprecated and unknown algorithms are ignored", async (t) => {
  t.equal(codeOf(verifyContentDigest(["md5=:Sd/dVLAcvNLSq16eXua5uQ==:"], HELLO)), "digest-missing");
  t.equal(codeOf(verifyContentDigest(["unixsum=:AAA=:, crc32c=:AAAAAA==:, sha=:AAAA:, adler=:AA==:, unixcksum=:AA==:"], HELLO)), "digest-missing");
  t.equal(codeOf(verifyContentDigest(["sha3-256=:AAAA:"], HELLO)), "digest-missing", "unknown");
  t.same(verifyContentDigest([`md5=:AAAA:, ${HELLO_SHA256}`], HELLO), { ok: true, algorithms: ["sha-256"] }, "deprecated beside a good one");
  t.same(verifyContentDigest([`unknown=(1 2), ${HELLO_SHA256}`], HELLO), { ok: true, algorithms: ["sha-256"] }, "unknown of another type");
});

t.test("absent, empty and malformed fields", async (t) => {
  t.equal(codeOf(verifyContentDigest([], HELLO)), "digest-missing");
  t.equal(codeOf(verifyContentDigest([""], HELLO)), "digest-missing", "empty value");
  t.equal(codeOf(verifyContentDigest(["sha-256=X48E9q"], HELLO)), "bad-request", "token, not bytes");
  t.equal(codeOf(verifyContentDigest(['sha-256="X48E9q"'], HELLO)), "bad-request", "string, not bytes");
  t.equal(codeOf(verifyContentDigest(["sha-256=(:AAAA:)"], HELLO)), "bad-request", "inner list");
  t.equal(codeOf(verifyContentDigest(["sha-256=:X48E9qOokqqrvdts8nOJ"], HELLO)), "bad-request", "truncated");
  t.equal(codeOf(verifyContentDigest(["SHA-256=:AAAA:"], HELLO)), "bad-request", "uppercase key");
  t.equal(codeOf(verifyContentDigest(["sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:,"], HELLO)), "bad-request", "trailing comma");
  t.equal(codeOf(verifyContentDigest([`${HELLO_SHA256}\u00e9`], HELLO)), "bad-request", "non-ASCII");
  t.equal(codeOf(verifyContentDigest([`${HELLO_SHA256}\r\n`], HELLO)), "bad-request", "control characters");
  t.equal(codeOf(verifyContentDigest([`${HELLO_SHA256}, x=:${"A".repeat(5000)}:`], HELLO)), "bad-request", "oversized");
});
