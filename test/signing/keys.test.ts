import t from "tap";
import { X509Certificate, createSecretKey, generateKeyPairSync } from "node:crypto";
import {
  PublicKeyCache,
  algorithmForKey,
  certificateThumbprint,
  keyMatchesAlgorithm,
} from "../../src/signing/index.js";
import { messageNamed, privateKeyFor, publicKeyFor } from "./rfc9421-fixtures.js";

// The client certificate of RFC 9421 B.3 (an RFC 9440 Client-Cert value): a real EC P-256 cert.
const clientCert = messageNamed("bB.3-proxy-request").headers.find(([n]) => n === "Client-Cert")![1];
const CERT_DER = Buffer.from(clientCert.slice(1, -1), "base64");

t.test("algorithmForKey", async (t) => {
  t.equal(algorithmForKey(publicKeyFor("test-key-ecc-p256")), "ecdsa-p256-sha256");
  t.equal(algorithmForKey(privateKeyFor("test-key-ecc-p256")), "ecdsa-p256-sha256");
  t.equal(algorithmForKey(generateKeyPairSync("ec", { namedCurve: "P-384" }).publicKey), "ecdsa-p384-sha384");
  t.equal(algorithmForKey(publicKeyFor("test-key-ed25519")), "ed25519");
  t.equal(algorithmForKey(publicKeyFor("test-key-rsa")), "rsa-pss-sha512", "an RSA key does PSS, never v1.5 by default");
  t.equal(algorithmForKey(privateKeyFor("test-key-rsa-pss")), "rsa-pss-sha512");
  t.equal(algorithmForKey(createSecretKey(Buffer.alloc(32))), "hmac-sha256");
  t.equal(algorithmForKey(generateKeyPairSync("ec", { namedCurve: "secp256k1" }).publicKey), undefined, "other curve");
  t.equal(algorithmForKey(generateKeyPairSync("ed448").publicKey), undefined, "ed448");
  t.equal(algorithmForKey(generateKeyPairSync("x25519").publicKey), undefined, "x25519");
});

t.test("keyMatchesAlgorithm", async (t) => {
  const rsa = publicKeyFor("test-key-rsa");
  t.ok(keyMatchesAlgorithm(rsa, "rsa-v1_5-sha256"));
  t.ok(keyMatchesAlgorithm(rsa, "rsa-pss-sha512"));
  t.notOk(keyMatchesAlgorithm(privateKeyFor("test-key-rsa-pss"), "rsa-v1_5-sha256"), "PSS-only key");
  const pssSha256 = generateKeyPairSync("rsa-pss", { modulusLength: 1024, hashAlgorithm: "sha256", mgf1HashAlgorithm: "sha256" });
  t.notOk(keyMatchesAlgorithm(pssSha256.publicKey, "rsa-pss-sha512"), "PSS key bound to SHA-256");
  const short = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey;
  t.notOk(keyMatchesAlgorithm(short, "rsa-pss-sha512"), "RSA under 2048 bits (PSS)");
  t.notOk(keyMatchesAlgorithm(short, "rsa-v1_5-sha256"), "RSA under 2048 bits (v1.5)");
  const pssAny = generateKeyPairSync("rsa-pss", { modulusLength: 2048 }).publicKey;
  t.ok(keyMatchesAlgorithm(pssAny, "rsa-pss-sha512"), "unrestricted RSA-PSS key");
  t.notOk(keyMatchesAlgorithm(publicKeyFor("test-key-ecc-p256"), "ecdsa-p384-sha384"));
  t.notOk(keyMatchesAlgorithm(publicKeyFor("test-key-ed25519"), "hmac-sha256"));
  t.notOk(keyMatchesAlgorithm(createSecretKey(Buffer.alloc(32)), "ed25519"));
});

t.test("certificateThumbprint is base64url SHA-256 of the DER (x5t#S256)", async (t) => {
  const thumbprint = certificateThumbprint(CERT_DER);
  const fromNode = Buffer.from(new X509Certificate(CERT_DER).fingerprint256.replaceAll(":", ""), "hex").toString("base64url");
  t.equal(thumbprint, fromNode);
  t.match(thumbprint, /^[A-Za-z0-9_-]{43}$/);
});

t.test("PublicKeyCache imports once per certificate and evicts the least recently used", async (t) => {
  const cache = new PublicKeyCache(2);
  const key = cache.get(CERT_DER);
  t.equal(key.asymmetricKeyType, "ec");
  t.ok(key.equals(new X509Certificate(CERT_DER).publicKey));
  t.equal(cache.get(CERT_DER), key, "same KeyObject on a hit");
  t.equal(cache.get(new Uint8Array(CERT_DER), certificateThumbprint(CERT_DER)), key, "thumbprint given");
  const b = cache.get(CERT_DER, "b");
  t.equal(cache.get(CERT_DER), key, "touch the first entry");
  cache.get(CERT_DER, "c");
  t.equal(cache.size, 2);
  t.not(cache.get(CERT_DER, "b"), b, "b was least recently used and re-imported");
  t.throws(() => cache.get(Buffer.from("not a certificate"), "junk"));
  t.throws(() => new PublicKeyCache(0));
});
