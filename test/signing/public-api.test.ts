import { generateKeyPairSync, randomUUID } from "node:crypto";
import t from "tap";
import * as postern from "../../src/index.js";

t.test("the package entry signs and verifies as the README shows", async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const body = Buffer.from('{"order":42}');
  const headers: Array<[string, string]> = [
    ["content-type", "application/json"],
    ["content-digest", postern.createContentDigest(body)],
  ];
  const message = { method: "POST", scheme: "https" as const, authority: "gw:8443", path: "/v1/messages/x", query: "", headers };
  const created = Math.floor(Date.now() / 1000);
  const { signatureInput, signature } = postern.signRequest(message, { key: privateKey, keyid: "client-1", created, nonce: randomUUID(), tag: "postern" });
  const received = { ...message, headers: [...headers, ["signature-input", signatureInput], ["signature", signature]] as Array<[string, string]> };
  const options = {
    resolveKey: (keyid: string) => (keyid === "client-1" ? { key: publicKey } : undefined),
    now: Date.now,
    maxAgeSeconds: 300,
    clockSkewSeconds: 30,
    tag: "postern",
    requiredComponents: postern.PROFILE_COMPONENTS,
    requiredParameters: ["created", "nonce", "keyid"] as const,
  };
  t.ok(postern.verifyRequest(received, options).ok);
  t.match(postern.verifyRequest({ ...received, path: "/v1/messages/y" }, options), { ok: false, code: "signature-invalid" });
  t.ok(postern.verifyContentDigest([headers[1]![1]], body).ok);
  t.type(postern.PosternClient, "function");
  t.type(postern.verifyStreamEntry, "function");
  t.ok(postern.isErrorCode("replayed"));
});
