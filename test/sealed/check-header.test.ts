/**
 * The gateway's check of a sealed body, one rule per test with its refusal code, on JWEs made
 * by jose through sealPayload (and altered by hand where no honest sealer would go).
 */
import { generateKeyPairSync } from "node:crypto";
import t from "tap";
import {
  checkSealedHeader,
  currentJwks,
  currentKeyInfo,
  openSealed,
  parseSealingJwks,
  privateKeyFromPem,
  sealPayload,
  type SealAlgorithm,
  type SealBinding,
  type SealCurve,
} from "../../src/sealed/index.js";

function backendKey(crv: SealCurve, alg: SealAlgorithm = "ECDH-ES+A256KW") {
  const { privateKey } = crv === "X25519" ? generateKeyPairSync("x25519") : generateKeyPairSync("ec", { namedCurve: "P-256" });
  const priv = privateKeyFromPem(privateKey.export({ type: "pkcs8", format: "pem" }) as string, "test");
  const { kty, x, y } = privateKey.export({ format: "jwk" });
  const jwk = { kty, crv, x, ...(y ? { y } : {}), kid: priv.kid, use: "enc", alg };
  return { priv, jwk, set: parseSealingJwks({ keys: [jwk] }) };
}

const binding: SealBinding = { route: "POST /v1/sealed/orders", sender: "S".repeat(43) };
const x25519 = backendKey("X25519");
const p256 = backendKey("P-256", "ECDH-ES");
const expect = (set = x25519.set, b = binding) => ({ keys: currentKeyInfo(set, Date.now()), algorithms: ["ECDH-ES+A256KW", "ECDH-ES"] as const, binding: b });

/** Replaces the protected header (the result no longer decrypts, but the gateway never decrypts). */
function withHeader(jwe: string, edit: (h: Record<string, unknown>) => void): Buffer {
  const parts = jwe.split(".");
  const header = JSON.parse(Buffer.from(parts[0]!, "base64url").toString()) as Record<string, unknown>;
  edit(header);
  parts[0] = Buffer.from(JSON.stringify(header)).toString("base64url");
  return Buffer.from(parts.join("."));
}

const sealedX = (await sealPayload(Buffer.from('{"a":1}'), x25519.set, binding, "application/json")).jwe;
const sealedP = (await sealPayload(Buffer.from('{"a":1}'), p256.set, binding)).jwe;

t.test("a body sealed by jose to a current key, for this route and sender, passes; X25519 and P-256", async (t) => {
  t.match(checkSealedHeader(Buffer.from(sealedX), expect()), { ok: true, kid: x25519.priv.kid, alg: "ECDH-ES+A256KW" });
  t.match(checkSealedHeader(Buffer.from(sealedP), expect(p256.set)), { ok: true, kid: p256.priv.kid, alg: "ECDH-ES" });
  t.equal(sealedP.split(".")[1], "", "ECDH-ES carries no encrypted key");
});

t.test("not a compact JWE: sealed-invalid", async (t) => {
  for (const body of ["", "{}", "a.b.c.d", "a.b.c.d.e.f", '{"protected":"x"}', `${sealedX}.`, sealedX.replace(".", ".!")]) {
    t.match(checkSealedHeader(Buffer.from(body), expect()), { ok: false, code: "sealed-invalid" }, JSON.stringify(body.slice(0, 20)));
  }
  const parts = sealedX.split(".");
  t.match(checkSealedHeader(Buffer.from([parts[0], parts[1], "AAAA", parts[3], parts[4]].join(".")), expect()), { code: "sealed-invalid" }, "IV of the wrong length");
  t.match(checkSealedHeader(Buffer.from([parts[0], parts[1], parts[2], parts[3], "AAAA"].join(".")), expect()), { code: "sealed-invalid" }, "tag of the wrong length");
  t.match(checkSealedHeader(Buffer.from([Buffer.from("[1]").toString("base64url"), ...parts.slice(1)].join(".")), expect()), { code: "sealed-invalid" }, "a header that is not an object");
});

t.test("an algorithm outside the profile or the backend's list: sealed-invalid", async (t) => {
  t.match(checkSealedHeader(withHeader(sealedX, (h) => (h.alg = "ECDH-ES+A128KW")), expect()), { code: "sealed-invalid" });
  t.match(checkSealedHeader(withHeader(sealedX, (h) => (h.alg = "RSA-OAEP-256")), expect()), { code: "sealed-invalid" });
  t.match(checkSealedHeader(withHeader(sealedX, (h) => (h.alg = "dir")), expect()), { code: "sealed-invalid" });
  t.match(checkSealedHeader(withHeader(sealedX, (h) => (h.enc = "A128GCM")), expect()), { code: "sealed-invalid" });
  t.match(checkSealedHeader(withHeader(sealedX, (h) => (h.enc = "A256CBC-HS512")), expect()), { code: "sealed-invalid" });
  t.match(checkSealedHeader(Buffer.from(sealedX), { ...expect(), algorithms: ["ECDH-ES"] }), { code: "sealed-invalid" }, "the backend allows ECDH-ES only");
  t.match(checkSealedHeader(withHeader(sealedX, (h) => (h.alg = "ECDH-ES")), expect()), { code: "sealed-invalid" }, "ECDH-ES with an encrypted key");
});

t.test("compression, crit and key references are refused: sealed-invalid", async (t) => {
  for (const name of ["zip", "crit", "jku", "x5u", "jwk"]) {
    t.match(checkSealedHeader(withHeader(sealedX, (h) => (h[name] = name === "crit" ? ["exp"] : "DEF")), expect()), { code: "sealed-invalid" }, name);
  }
});

t.test("a kid that is not a current key of the backend: sealed-key-unknown", async (t) => {
  t.match(checkSealedHeader(Buffer.from(sealedX), expect(p256.set)), { code: "sealed-key-unknown" }, "another backend's key");
  t.match(checkSealedHeader(withHeader(sealedX, (h) => delete h.kid), expect()), { code: "sealed-key-unknown" }, "no kid");
  // A retired key past its overlap is no longer current.
  const both = parseSealingJwks({ keys: [p256.jwk, x25519.jwk], publishUntil: { [x25519.priv.kid]: Date.now() - 1 } });
  t.match(checkSealedHeader(Buffer.from(sealedX), expect(both)), { code: "sealed-key-unknown" });
  const overlap = parseSealingJwks({ keys: [p256.jwk, x25519.jwk], publishUntil: { [x25519.priv.kid]: Date.now() + 60_000 } });
  t.match(checkSealedHeader(Buffer.from(sealedX), expect(overlap)), { ok: true }, "within its overlap it still is");
  t.same(currentJwks(both, Date.now()).keys.map((k) => k.kid), [p256.priv.kid], "and it is no longer published");
});

t.test("an ephemeral key not on the named key's curve, or with a private member: sealed-invalid", async (t) => {
  t.match(checkSealedHeader(withHeader(sealedX, (h) => ((h.epk as Record<string, unknown>).crv = "X448")), expect()), { code: "sealed-invalid" });
  t.match(checkSealedHeader(withHeader(sealedX, (h) => ((h.epk as Record<string, unknown>).d = "A".repeat(43))), expect()), { code: "sealed-invalid" });
  t.match(checkSealedHeader(withHeader(sealedX, (h) => delete h.epk), expect()), { code: "sealed-invalid" });
  t.match(checkSealedHeader(withHeader(sealedP, (h) => delete (h.epk as Record<string, unknown>).y), expect(p256.set)), { code: "sealed-invalid" });
});

t.test("sealed for another route or sender: sealed-binding", async (t) => {
  t.match(checkSealedHeader(Buffer.from(sealedX), expect(x25519.set, { ...binding, route: "POST /v1/sealed/other" })), { code: "sealed-binding" });
  t.match(checkSealedHeader(Buffer.from(sealedX), expect(x25519.set, { ...binding, sender: "T".repeat(43) })), { code: "sealed-binding" });
  t.match(checkSealedHeader(withHeader(sealedX, (h) => delete h["postern-route"]), expect()), { code: "sealed-binding" });
});

t.test("opening: the right key decrypts; a changed byte, header or key does not", async (t) => {
  const keys = new Map([[x25519.priv.kid, x25519.priv]]);
  const opened = await openSealed(Buffer.from(sealedX), keys, binding);
  t.match(opened, { ok: true, kid: x25519.priv.kid, contentType: "application/json" });
  t.equal(opened.ok && opened.plaintext.toString(), '{"a":1}');
  const parts = sealedX.split(".");
  const flipped = parts[3]!.slice(0, -2) + (parts[3]!.at(-2) === "A" ? "B" : "A") + parts[3]!.at(-1);
  t.match(await openSealed(Buffer.from([parts[0], parts[1], parts[2], flipped, parts[4]].join(".")), keys, binding), { ok: false, code: "sealed-undecryptable" });
  // The header is the AEAD's additional data: rebinding it to another route breaks decryption.
  const rebound = withHeader(sealedX, (h) => (h["postern-route"] = "POST /v1/sealed/other"));
  t.match(await openSealed(rebound, keys, { ...binding, route: "POST /v1/sealed/other" }), { ok: false, code: "sealed-undecryptable" });
  // The kid names our key but the body was sealed to another: the key does not unwrap it.
  const other = backendKey("X25519");
  const toOther = (await sealPayload(Buffer.from("x"), other.set, binding)).jwe;
  const misnamed = withHeader(toOther, (h) => (h.kid = x25519.priv.kid));
  t.match(await openSealed(misnamed, keys, binding), { ok: false, code: "sealed-undecryptable" });
});

t.test("a sealing JWKS holds public keys whose kid is their thumbprint", async (t) => {
  t.throws(() => parseSealingJwks({ keys: [{ ...x25519.jwk, d: "A".repeat(43) }] }), { code: "bad-request" }, "a private member");
  t.throws(() => parseSealingJwks({ keys: [{ ...x25519.jwk, kid: p256.priv.kid }] }), { code: "bad-request" }, "a borrowed kid");
  t.throws(() => parseSealingJwks({ keys: [{ ...x25519.jwk, use: "sig" }] }), { code: "bad-request" });
  t.throws(() => parseSealingJwks({ keys: [{ ...x25519.jwk, alg: "RSA-OAEP" }] }), { code: "bad-request" });
  t.throws(() => parseSealingJwks({ keys: [x25519.jwk, x25519.jwk] }), { code: "bad-request" }, "a kid twice");
  t.throws(() => parseSealingJwks({}), { code: "bad-request" });
});
