import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { credentialOf } from "../../src/est/credentials.js";
import { base64Lines, csrPemFromBody, leafDerOf, multipartMixed } from "../../src/est/wire.js";
import { PosternError } from "../../src/errors.js";
import { certsOnlyCms } from "../../src/pki/der/certs-only.js";
import { csrAttributes } from "../../src/pki/issue/csr-attributes.js";
import { defineProfile } from "../../src/pki/issue/profile.js";

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

t.test("credentials: the token from Basic (any user) or Bearer; none when absent; anything else is token-invalid", async (t) => {
  t.same(credentialOf(undefined), { kind: "none" });
  t.same(credentialOf(""), { kind: "none" });
  t.same(credentialOf(basic("device-1", "pt_abc")), { kind: "token", token: "pt_abc" });
  t.same(credentialOf(basic("", "pt_abc")), { kind: "token", token: "pt_abc" }, "an empty user name");
  t.same(credentialOf(basic("u", "a:b")), { kind: "token", token: "a:b" }, "only the first colon separates");
  t.same(credentialOf("bearer pt_xyz"), { kind: "token", token: "pt_xyz" }, "the scheme is case-insensitive");
  for (const bad of [basic("user", ""), `Basic ${Buffer.from("no-colon").toString("base64")}`, "Digest username=x", "Bearer", "Bearer a b", "pt_abc"]) {
    t.throws(() => credentialOf(bad), { code: "token-invalid" }, bad);
  }
});

t.test("a CSR body must be application/pkcs10 and base64; whitespace and line breaks are fine", async (t) => {
  const pem = csrPemFromBody({ "content-type": "application/pkcs10" }, Buffer.from("MIIB\r\nAAAA\n"));
  t.equal(pem, "-----BEGIN CERTIFICATE REQUEST-----\nMIIBAAAA\n-----END CERTIFICATE REQUEST-----\n");
  t.ok(csrPemFromBody({ "content-type": "Application/PKCS10; charset=x" }, Buffer.from("QUJD")), "parameters and case are ignored");
  t.throws(() => csrPemFromBody({ "content-type": "application/json" }, Buffer.from("QUJD")), { code: "unsupported-media-type" });
  t.throws(() => csrPemFromBody({}, Buffer.from("QUJD")), { code: "unsupported-media-type" });
  for (const body of ["", "not base64!", "-----BEGIN CERTIFICATE REQUEST-----", "QU=JD"]) {
    t.throws(() => csrPemFromBody({ "content-type": "application/pkcs10" }, Buffer.from(body)), { code: "csr-invalid" }, JSON.stringify(body));
  }
});

t.test("base64 lines of 64 characters; the leaf of a chain; multipart parts in order with a fresh boundary", async (t) => {
  const lines = base64Lines(new Uint8Array(100).fill(7)).split("\n");
  t.same(lines.map((l) => l.length), [64, 64, 8, 0], "136 base64 characters");
  t.same([...Buffer.from(lines.join(""), "base64")], new Array(100).fill(7));
  t.throws(() => leafDerOf("no certificate here"), PosternError);
  t.same([...leafDerOf("-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nBAUG\n-----END CERTIFICATE-----\n")], [1, 2, 3]);
  const a = multipartMixed([
    { contentType: "application/pkcs8", der: Uint8Array.of(1) },
    { contentType: "application/pkcs7-mime; smime-type=certs-only", der: Uint8Array.of(2) },
  ]);
  const b = multipartMixed([{ contentType: "x/y", der: Uint8Array.of(1) }]);
  const boundary = /boundary=(\S+)$/.exec(a.contentType)?.[1] ?? "";
  t.match(boundary, /^est-[0-9a-f]{24}$/);
  t.not(boundary, /boundary=(\S+)$/.exec(b.contentType)?.[1], "a new boundary per answer");
  t.equal(
    a.body,
    `--${boundary}\r\nContent-Type: application/pkcs8\r\nContent-Transfer-Encoding: base64\r\n\r\nAQ==\n` +
      `--${boundary}\r\nContent-Type: application/pkcs7-mime; smime-type=certs-only\r\nContent-Transfer-Encoding: base64\r\n\r\nAg==\n--${boundary}--\r\n`,
  );
});

t.test("certs-only CMS and CSR attributes are DER that openssl reads", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "est-wire-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const key = join(dir, "k.pem");
  const certs = ["one", "two"].map((cn) => {
    const file = join(dir, `${cn}.der`);
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-subj", `/CN=${cn}`, "-days", "1", "-outform", "DER", "-out", file], { stdio: "ignore" });
    return execFileSync("cat", [file]);
  });
  writeFileSync(join(dir, "bag.der"), certsOnlyCms(certs.map((c) => new Uint8Array(c))));
  const printed = execFileSync("openssl", ["pkcs7", "-inform", "DER", "-in", join(dir, "bag.der"), "-print_certs"]).toString();
  t.match(printed, /subject=CN ?= ?one[\s\S]*subject=CN ?= ?two/, "both certificates, in order");
  const parsed = execFileSync("openssl", ["asn1parse", "-inform", "DER", "-in", join(dir, "bag.der")]).toString();
  t.match(parsed, /pkcs7-signedData/);
  t.match(parsed, /:pkcs7-data\s*\n[^\n]*cont \[ 0 \]\s*\n[^\n]*SEQUENCE/, "no eContent after the content type (RFC 5272 §4.1: absent); the certificates follow");
  writeFileSync(join(dir, "empty.der"), certsOnlyCms([]));
  t.equal(execFileSync("openssl", ["pkcs7", "-inform", "DER", "-in", join(dir, "empty.der"), "-print_certs"]).toString().trim(), "", "an empty bag parses too");

  const ecOnly = csrAttributes(defineProfile({ name: "ec", allowedKeyTypes: ["P-384"], allowedIdentityPatterns: ["device-*"] }));
  writeFileSync(join(dir, "attrs.der"), ecOnly);
  const attrs = execFileSync("openssl", ["asn1parse", "-inform", "DER", "-in", join(dir, "attrs.der")]).toString();
  t.match(attrs, /id-ecPublicKey[\s\S]*secp384r1/);
  t.notMatch(attrs, /prime256v1|rsaEncryption|ED25519/, "only what the profile allows");
  t.notMatch(attrs, /Subject Alternative Name/, "plain-name identities go in the CN, not a SAN");
});
