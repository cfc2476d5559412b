import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import t from "tap";
import { x509 } from "../../src/pki/der/x509.js";
import { startGateway } from "../helpers/gateway.js";
import { openTls, readAnswer, tlsMaterial } from "../helpers/raw-tls.js";

const REQUEST = "GET /v1/certificates?limit=1 HTTP/1.1\r\nhost: localhost\r\n\r\n";

/** Connects, waits for the session ticket, and returns it with the connection. */
async function connectForSession(port: number, options: object): Promise<{ socket: TLSSocket; session: Buffer }> {
  const socket = await openTls(port, options);
  const session = await new Promise<Buffer>((resolve) => {
    const ticket = socket.getSession?.();
    if (socket.getProtocol() === "TLSv1.2" && ticket) return resolve(ticket);
    socket.once("session", resolve);
  });
  return { socket, session };
}

for (const version of ["TLSv1.2", "TLSv1.3"] as const) {
  t.test(`finding 4 (${version}): a certificate that expired since its session began is refused on resumption`, async (t) => {
    let offsetMs = 0;
    const gw = await startGateway({ tls: { handshakesPerSecondPerAddress: 0 } }, { now: () => Date.now() + offsetMs });
    t.teardown(() => gw.stop());
    const material = { ...(await tlsMaterial(gw.certs)), minVersion: version, maxVersion: version };
    const port = gw.addresses.data.port;
    const notAfterMs = Date.parse(new X509Certificate(material.cert as Buffer).validTo);

    const first = await connectForSession(port, material);
    first.socket.destroy();
    const resumedNow = await openTls(port, { ...material, session: first.session });
    t.ok(resumedNow.isSessionReused(), "the session resumes");
    const fresh = await readAnswer(resumedNow, "GET /nothing HTTP/1.1\r\nhost: localhost\r\n\r\n", 5000);
    t.equal(fresh.status, 404, "and is served while the certificate is valid");

    const second = await connectForSession(port, material);
    second.socket.destroy();
    offsetMs = notAfterMs - Date.now() + 60_000; // the gateway's clock: a minute after notAfter
    const resumed = await openTls(port, { ...material, session: second.session });
    t.ok(resumed.isSessionReused(), "the session still resumes at the TLS layer");
    const answer = await readAnswer(resumed, "GET /nothing HTTP/1.1\r\nhost: localhost\r\n\r\n", 5000);
    t.equal(answer.status, 0, "but the expired certificate gets no HTTP answer");
    const metrics = await (await fetch(`${gw.publicUrl}/metrics`)).text();
    t.match(metrics, /postern_tls_handshake_failures_total\{reason="expired"\} [1-9]/);
  });
}

t.test("finding 5: with a renewal grace, an expired certificate from a foreign CA with our issuer's name is refused", async (t) => {
  const gw = await startGateway({ tls: { handshakesPerSecondPerAddress: 0 }, pki: { renewalGraceSeconds: 30 * 86_400 } });
  t.teardown(() => gw.stop());
  const { ca } = await tlsMaterial(gw.certs);
  const bundle = String(ca);
  const issuing = new x509.X509Certificate(bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)![0]!);
  const demo = new x509.X509Certificate(await readFile(join(gw.certs, "demo-client.crt"), "utf8"));
  t.equal(demo.issuer, issuing.subject, "the first bundle certificate issued the demo certificate");

  const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const foreign = await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
  const leafKeys = await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
  const forged = await x509.X509CertificateGenerator.create({
    serialNumber: "0badc0de",
    subject: demo.subject,
    issuer: issuing.subject,
    notBefore: new Date(Date.now() - 3 * 86_400_000),
    notAfter: new Date(Date.now() - 86_400_000),
    signingAlgorithm: algorithm,
    publicKey: leafKeys.publicKey,
    signingKey: foreign.privateKey,
    extensions: [...demo.extensions.filter((e) => e.type !== "2.5.29.35")],
  });
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey("pkcs8", leafKeys.privateKey)).toString("base64");
  const key = `-----BEGIN PRIVATE KEY-----\n${pkcs8.match(/.{1,64}/g)!.join("\n")}\n-----END PRIVATE KEY-----\n`;
  const socket = await openTls(gw.addresses.admin.port, { cert: forged.toString("pem"), key, ca, servername: "localhost" });
  const answer = await readAnswer(socket, REQUEST, 5000);
  t.equal(answer.status, 0, "the forged certificate never reaches HTTP");
  const metrics = await (await fetch(`${gw.publicUrl}/metrics`)).text();
  t.match(metrics, /postern_tls_handshake_failures_total\{reason="unknown_ca"\} 1/, "counted as unknown_ca, not as merely expired");

  const real = await openTls(gw.addresses.admin.port, { ...(await tlsMaterial(gw.certs, "admin")) });
  t.equal((await readAnswer(real, REQUEST, 5000)).status, 200, "our own admin certificate is served");
});

t.test("a live connection ends when its certificate expires", async (t) => {
  // The gateway's clock says the demo certificate has 1.5 s left.
  const material = { minVersion: "TLSv1.3" as const };
  let offsetMs = 0;
  const gw = await startGateway({ tls: { handshakesPerSecondPerAddress: 0 } }, { now: () => Date.now() + offsetMs });
  t.teardown(() => gw.stop());
  const tls = { ...(await tlsMaterial(gw.certs)), ...material };
  offsetMs = Date.parse(new X509Certificate(tls.cert as Buffer).validTo) - Date.now() - 1500;
  const socket = await openTls(gw.addresses.data.port, tls);
  const started = Date.now();
  await new Promise((resolve) => socket.once("close", resolve));
  t.ok(Date.now() - started >= 1000, "not before the certificate's notAfter");
  const metrics = await (await fetch(`${gw.publicUrl}/metrics`)).text();
  t.match(metrics, /postern_connections_ended_total\{reason="expired"\} 1/);
});
