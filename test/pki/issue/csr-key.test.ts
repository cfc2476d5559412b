import t from "tap";
import { createECDH, createPublicKey, generateKeyPairSync, randomInt, webcrypto } from "node:crypto";
import { bitString, oid, seq } from "../../../src/pki/der/der.js";
import { publicKeyFromSpki } from "../../../src/pki/der/key-spki.js";
import { parseCsr } from "../../../src/pki/issue/csr.js";
import { PosternError } from "../../../src/errors.js";
import { x509 } from "../../../src/pki/der/x509.js";

t.setTimeout(120_000);

const spkiOf = (k: ReturnType<typeof generateKeyPairSync>["publicKey"]): Uint8Array =>
  new Uint8Array(k.export({ format: "der", type: "spki" }));

t.test("the JWK fast path yields the same key as node's SPKI decoder", async (t) => {
  const cases = [
    generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey,
    generateKeyPairSync("ec", { namedCurve: "P-384" }).publicKey,
    generateKeyPairSync("ec", { namedCurve: "P-521" }).publicKey,
    generateKeyPairSync("ed25519").publicKey,
    generateKeyPairSync("ed448").publicKey,
    generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey,
    generateKeyPairSync("rsa", { modulusLength: 1024, publicExponent: 3 }).publicKey,
  ];
  for (const key of cases) {
    const spki = spkiOf(key);
    const fast = publicKeyFromSpki(spki);
    const slow = createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
    t.ok(fast.equals(slow), `${key.asymmetricKeyType} ${JSON.stringify(key.asymmetricKeyDetails, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))}`);
  }
});

t.test("off-curve points and garbage are rejected", async (t) => {
  const spki = spkiOf(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey);
  const offCurve = spki.slice();
  offCurve[offCurve.length - 1] = (offCurve[offCurve.length - 1] as number) ^ 0x01;
  t.throws(() => publicKeyFromSpki(offCurve));
  t.throws(() => publicKeyFromSpki(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00])));
});

t.test("a compressed EC point falls back to node's decoder and is the same key", async (t) => {
  const ecdh = createECDH("prime256v1");
  ecdh.generateKeys();
  const spkiFor = (point: Buffer) =>
    seq(seq(oid("1.2.840.10045.2.1"), oid("1.2.840.10045.3.1.7")), bitString(new Uint8Array(point)));
  const fromCompressed = publicKeyFromSpki(spkiFor(ecdh.getPublicKey(null, "compressed")));
  const fromUncompressed = publicKeyFromSpki(spkiFor(ecdh.getPublicKey(null, "uncompressed")));
  t.ok(fromCompressed.equals(fromUncompressed));
});

t.test("random mutations of a CSR are refused with a PosternError, never a crash", async (t) => {
  const keys = await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: "CN=alice, OU=client", keys, signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: "spiffe://postern.local/client/alice" }])],
  });
  const der = new Uint8Array(csr.rawData);
  t.equal(parseCsr(der).uris[0], "spiffe://postern.local/client/alice", "x509-made CSR parses");
  let refused = 0;
  for (let i = 0; i < 2000; i++) {
    const m = der.slice();
    for (let j = randomInt(1, 4); j > 0; j--) m[randomInt(m.length)] = randomInt(256);
    try {
      parseCsr(m);
    } catch (error) {
      if (!(error instanceof PosternError) || error.code !== "csr-invalid") t.fail(`unexpected ${String(error)}`);
      refused++;
    }
  }
  t.ok(refused > 1900, `refused ${refused} of 2000 mutated CSRs`);
});
