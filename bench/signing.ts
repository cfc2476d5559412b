import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from "node:crypto";
import { createContentDigest, PROFILE_COMPONENTS, signMessage, verifyMessage, type HttpMessageParts } from "../src/signing/index.js";
import { measure, report } from "./measure.js";

/** Verify cost: the whole RFC 9421 verification against the bare ECDSA verify it contains. */
export async function benchSigning(): Promise<void> {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const body = Buffer.from(JSON.stringify({ order: 42, items: ["a", "b", "c"], note: "x".repeat(200) }));
  const headers: Array<[string, string]> = [
    ["host", "gateway.example:8443"],
    ["content-type", "application/json"],
    ["content-digest", createContentDigest(body)],
    ["content-length", String(body.length)],
  ];
  const base: HttpMessageParts = { method: "POST", scheme: "https", authority: "gateway.example:8443", path: "/v1/messages/orders", query: "", headers };
  const created = Math.floor(Date.now() / 1000);
  const signed = signMessage(base, { key: privateKey, keyid: "k1", components: PROFILE_COMPONENTS, created, nonce: "bench-nonce-0123456789", tag: "postern" });
  const message: HttpMessageParts = { ...base, headers: [...headers, ["signature-input", signed.signatureInput], ["signature", signed.signature]] };
  const rawSignature = sign("sha256", Buffer.from("x".repeat(300)), { key: privateKey, dsaEncoding: "ieee-p1363" });
  const data = Buffer.from("x".repeat(300));
  const pub = createPublicKey(publicKey.export({ type: "spki", format: "pem" }));
  void createPrivateKey;

  const baseline = await measure("node crypto.verify P-256 (baseline)", () => {
    verify("sha256", data, { key: pub, dsaEncoding: "ieee-p1363" }, rawSignature);
  });
  const full = await measure("verifyMessage P-256 (parse, base, verify, freshness)", () => {
    const result = verifyMessage(message, {
      resolveKey: () => ({ key: pub }),
      now: () => created * 1000,
      maxAgeSeconds: 300,
      clockSkewSeconds: 30,
      tag: "postern",
      requiredComponents: PROFILE_COMPONENTS,
    });
    if (!result.ok) throw new Error(result.code);
  });
  report("signing", [baseline, full], baseline);
}
