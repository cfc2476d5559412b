/**
 * The sealed section of `npm run bench`: what a sealed message costs the gateway against a
 * plain one of the same size, through the real pipeline (`Gateway.handle`: route, content type,
 * digest, the JWE header check, RFC 9421 verify) with an in-memory backend, in this process.
 * TLS and HTTP parsing cost the same for both, so they are left out. The gateway never
 * decrypts; sealing (client) and opening (consumer) are measured for reference.
 */
import { generateKeyPairSync, KeyObject, webcrypto, X509Certificate } from "node:crypto";
import { parseConfig } from "../src/config/load.js";
import type { AcceptedMessage, Backend, Delivery } from "../src/forward/index.js";
import { Gateway, RouteTable } from "../src/gateway/index.js";
import { noopRecorder } from "../src/metrics/recorder.js";
import { identityFromCertificate } from "../src/pki/index.js";
import { x509 } from "../src/pki/der/x509.js";
import { MemoryRateLimiter } from "../src/ratelimit/index.js";
import { checkSealedHeader, currentKeyInfo, openSealed, parseSealingJwks, privateKeyFromPem, sealedRoute, sealPayload } from "../src/sealed/index.js";
import { certificateThumbprint, createContentDigest, PROFILE_COMPONENTS, PROFILE_TAG, PublicKeyCache, signMessage, type HttpMessageParts } from "../src/signing/index.js";
import { measure, report } from "./measure.js";

/** Accepts everything, stores nothing: the pipeline's own cost is what is measured. */
class NullBackend implements Backend {
  readonly name = "vault";
  readonly kind = "null";
  async deliver(message: AcceptedMessage): Promise<Delivery> {
    return { kind: "accepted", messageId: message.messageId };
  }
  async close(): Promise<void> {}
}

export async function benchSealed(bodyBytes = 1024): Promise<void> {
  const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01", name: "CN=bench, OU=client", notBefore: new Date(Date.now() - 86_400_000), notAfter: new Date(Date.now() + 86_400_000), keys, signingAlgorithm: algorithm,
  });
  const der = Buffer.from(cert.rawData);
  const clientKey = KeyObject.from(keys.privateKey);
  const identity = identityFromCertificate(new X509Certificate(der));

  const ecdh = generateKeyPairSync("x25519").privateKey;
  const backendKey = privateKeyFromPem(ecdh.export({ type: "pkcs8", format: "pem" }) as string, "bench");
  const { x } = ecdh.export({ format: "jwk" });
  const keySet = parseSealingJwks({ keys: [{ kty: "OKP", crv: "X25519", x, kid: backendKey.kid, use: "enc", alg: "ECDH-ES+A256KW" }] });
  const routes = [
    { name: "plain", path: "/v1/plain/:topic", backend: "vault", allow: { roles: ["client"] } },
    { name: "sealed", path: "/v1/sealed/:topic", backend: "vault", allow: { roles: ["client"] }, sealed: "required" },
  ];
  const config = parseConfig({ backends: { vault: { type: "stream", sealing: { publicKeys: "/bench/jwks.json" } } }, routes });
  const gateway = new Gateway({
    routes: new RouteTable(config.routes),
    backends: new Map([["vault", new NullBackend()]]),
    sealing: new Map([["vault", { keys: keySet, algorithms: ["ECDH-ES+A256KW", "ECDH-ES"] as const }]]),
    signature: config.signature,
    keys: new PublicKeyCache(),
    rateLimiter: new MemoryRateLimiter(Date.now),
    metrics: noopRecorder,
    now: Date.now,
  });

  const plaintext = Buffer.from(JSON.stringify({ order: 42, note: "x".repeat(Math.max(0, bodyBytes - 26)) }));
  const binding = { route: sealedRoute("POST", "/v1/sealed/orders"), sender: certificateThumbprint(der) };
  const sealed = Buffer.from((await sealPayload(plaintext, keySet, binding, "application/json")).jwe);
  // The null backend claims no nonce, so one signed request can be handled again and again.
  const request = (path: string, body: Buffer, contentType: string) => {
    const headers: Array<[string, string]> = [["content-type", contentType], ["content-digest", createContentDigest(body, "sha-256")]];
    const message: HttpMessageParts = { method: "POST", scheme: "https", authority: "gw:8443", path, query: "", headers };
    const fields = signMessage(message, {
      key: clientKey, keyid: certificateThumbprint(der), components: PROFILE_COMPONENTS, created: Math.floor(Date.now() / 1000), nonce: "bench-nonce-0123456789", tag: PROFILE_TAG,
    });
    const full = { ...message, headers: [...headers, ["signature-input", fields.signatureInput], ["signature", fields.signature]] as Array<[string, string]> };
    return () => gateway.handle({ identity, peerCertDer: der, message: full, readBody: async () => body });
  };
  const plainRequest = request("/v1/plain/orders", plaintext, "application/json");
  const sealedRequest = request("/v1/sealed/orders", sealed, "application/jose");
  // A plain body as long as the JWE: what the digest and copy cost anyway, so the difference is the header check.
  const samePlain = Buffer.from(JSON.stringify({ order: 42, note: "x".repeat(Math.max(0, sealed.length - 26)) }));
  const samePlainRequest = request("/v1/plain/orders", samePlain, "application/json");
  await plainRequest();
  await sealedRequest();
  await samePlainRequest();

  const plain = await measure(`gateway pipeline, plain ${plaintext.length} B JSON (baseline)`, plainRequest);
  const samePlainRun = await measure(`gateway pipeline, plain ${samePlain.length} B JSON (the JWE's size)`, samePlainRequest);
  const sealedRun = await measure(`gateway pipeline, sealed (${sealed.length} B JWE)`, sealedRequest);
  const header = await measure("  of which the JWE header check", () => {
    const checked = checkSealedHeader(sealed, { keys: currentKeyInfo(keySet, Date.now()), algorithms: ["ECDH-ES+A256KW"], binding });
    if (!checked.ok) throw new Error(checked.code);
  });
  const sealing = await measure("client: seal (jose, X25519 ECDH-ES+A256KW, A256GCM)", () => sealPayload(plaintext, keySet, binding, "application/json"));
  const opening = await measure("consumer: open (jose)", async () => {
    const opened = await openSealed(sealed, new Map([[backendKey.kid, backendKey]]), binding);
    if (!opened.ok) throw new Error(opened.code);
  });
  report("sealed: a sealed message at the gateway against a plain one (no TLS; the gateway never decrypts)", [plain, samePlainRun, sealedRun, header, sealing, opening], plain);
}
