import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { connect, type TLSSocket } from "node:tls";
import t from "tap";
import { AdminClient, PosternClient } from "../../src/client/index.js";
import { createCsr } from "../../src/pki/issue/csr-create.js";
import { issueLeafDer } from "../../src/pki/issue/issue.js";
import { generateKeyPair, plainPrivateKeyPem, spkiOf } from "../../src/pki/keys/keys.js";
import { startGateway } from "../helpers/gateway.js";
import { runTool } from "../helpers/process.js";

t.setTimeout(240_000);
/** Runs a command; resolves with its output whatever the exit code. */
async function sh(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  const { code, stdout, stderr } = await runTool(cmd, args);
  return { code, out: stdout + stderr };
}

const gw = await startGateway();
t.teardown(() => gw.stop());
const work = await gw.workDir();
const certs = gw.certs;
const caBundle = gw.caBundle;
const issuingCa = join(certs, "issuing-ca.crt");
const admin = await gw.adminClient();

interface Issued {
  serial: string;
  certificate: string;
  keyPem: string;
  /** The leaf alone, written to a file for openssl. */
  leafFile: string;
}

let n = 0;
/** A client certificate issued through the admin API for a key made here. */
async function issue(name: string): Promise<Issued> {
  const { privateKey } = await generateKeyPair("P-256");
  const csr = createCsr({ privateKey, identity: `spiffe://postern.local/client/${name}` });
  const issued = (await admin.call("POST", "/v1/certificates", { csr, roles: ["client"] })) as { serial: string; certificate: string };
  const leafFile = join(work, `leaf-${++n}.pem`);
  await writeFile(leafFile, issued.certificate.split(/(?=-----BEGIN CERTIFICATE-----)/)[0]!);
  return { ...issued, keyPem: plainPrivateKeyPem(privateKey), leafFile };
}

async function revoke(serial: string, reason = "keyCompromise"): Promise<void> {
  await admin.call("POST", `/v1/certificates/${serial}/revoke`, { reason });
}

/** openssl verify with the CRL the gateway publishes now. */
async function verifyWithCrl(leafFile: string): Promise<{ code: number; out: string }> {
  const crlFile = join(work, `crl-${++n}.pem`);
  await writeFile(crlFile, await (await fetch(`${gw.publicUrl}/crl.pem`)).text());
  return sh("openssl", ["verify", "-crl_check", "-CAfile", caBundle, "-CRLfile", crlFile, leafFile]);
}

function ocsp(leafFile: string): Promise<{ code: number; out: string }> {
  return sh("openssl", ["ocsp", "-issuer", issuingCa, "-cert", leafFile, "-url", `${gw.publicUrl}/ocsp`, "-CAfile", caBundle]);
}

t.test("openssl verify -crl_check: OK, then certificate revoked once the CRL is rebuilt", async (t) => {
  const leaf = await issue("crl");
  const before = await verifyWithCrl(leaf.leafFile);
  t.equal(before.code, 0, before.out);
  t.match(before.out, /: OK/);

  await revoke(leaf.serial);
  let after = await verifyWithCrl(leaf.leafFile);
  for (const deadline = Date.now() + 30_000; after.code === 0 && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 100)); // the CRL is rebuilt on revocation, asynchronously
    after = await verifyWithCrl(leaf.leafFile);
  }
  t.not(after.code, 0);
  t.match(after.out, /certificate revoked/);
});

t.test("openssl ocsp: good, revoked with time and reason, unknown for a serial the store never saw", async (t) => {
  const leaf = await issue("ocsp");
  const good = await ocsp(leaf.leafFile);
  t.equal(good.code, 0, good.out);
  t.match(good.out, /Response verify OK/);
  t.match(good.out, new RegExp(`${leaf.leafFile}: good`));

  await revoke(leaf.serial, "keyCompromise");
  const revoked = await ocsp(leaf.leafFile);
  t.match(revoked.out, /Response verify OK/);
  t.match(revoked.out, new RegExp(`${leaf.leafFile}: revoked`));
  t.match(revoked.out, /Reason: keyCompromise/);
  t.match(revoked.out, /Revocation Time: \w+ +\d+ \d\d:\d\d:\d\d \d{4} GMT/);

  // Signed by the same issuing CA but never recorded: the responder must not say good.
  const { publicKey } = await generateKeyPair("P-256");
  const stray = issueLeafDer({
    issuer: gw.app.pki.issuer,
    spki: spkiOf(publicKey),
    identity: "spiffe://postern.local/client/stray",
    roles: ["client"],
    lifetimeSeconds: 3600,
    usage: "client",
  });
  const strayFile = join(work, "stray.pem");
  await writeFile(strayFile, stray.pem);
  const unknown = await ocsp(strayFile);
  t.match(unknown.out, /Response verify OK/);
  t.match(unknown.out, new RegExp(`${strayFile}: unknown`));
});

/** One TLS connection to the data plane with a client certificate; resolves once connected. */
function openTls(cert: string, key: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: "127.0.0.1", port: gw.addresses.data.port, servername: "localhost", cert, key, ca: gw.app.pki.caBundlePem },
      () => resolve(socket),
    );
    socket.once("error", reject);
  });
}

/** Writes one keep-alive request and resolves with the status line, or with "closed". */
function exchange(socket: TLSSocket): Promise<string> {
  if (socket.destroyed) return Promise.resolve("closed");
  return new Promise((resolve) => {
    let received = "";
    const onData = (d: Buffer) => {
      received += d.toString();
      if (received.includes("\r\n\r\n")) finish(received.split("\r\n")[0]!);
    };
    const finish = (answer: string) => {
      socket.off("data", onData);
      socket.off("close", onClose);
      resolve(answer);
    };
    const onClose = () => finish(received === "" ? "closed" : received.split("\r\n")[0]!);
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.on("error", () => undefined);
    socket.write("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n");
  });
}

t.test("revocation closes a live keep-alive connection and refuses the next handshake, no restart", async (t) => {
  const leaf = await issue("live");
  const client = new PosternClient({ url: gw.dataUrl, cert: leaf.certificate, key: leaf.keyPem, ca: gw.app.pki.caBundlePem, attempts: 1 });
  t.teardown(() => client.close());
  const first = await client.send("/v1/messages/orders", JSON.stringify({ n: 1 }));
  t.equal(first.status, 202);

  const socket = await openTls(leaf.certificate, leaf.keyPem);
  t.match(await exchange(socket), /^HTTP\/1\.1 \d{3}/, "HTTP answers on the live connection");
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));

  await revoke(leaf.serial);
  await closed;
  t.ok(socket.destroyed, "the server closed the live connection at revocation");
  t.equal(await exchange(socket), "closed", "nothing more goes over it");

  await t.rejects(client.send("/v1/messages/orders", JSON.stringify({ n: 2 })), "the client's next message is refused");
  const fresh = await openTls(leaf.certificate, leaf.keyPem).catch(() => undefined);
  const answer = fresh ? await exchange(fresh) : "closed";
  t.equal(answer, "closed", "a new handshake never reaches HTTP");
  fresh?.destroy();
});

t.test("a key whose certificate was revoked is never certified again, by any path", async (t) => {
  const { privateKey } = await generateKeyPair("P-256");
  const csr = (name: string) => createCsr({ privateKey, identity: `spiffe://postern.local/client/${name}` });
  const first = (await admin.call("POST", "/v1/certificates", { csr: csr("rekey"), roles: ["client"] })) as { serial: string };
  await revoke(first.serial, "keyCompromise");
  await t.rejects(admin.call("POST", "/v1/certificates", { csr: csr("rekey"), roles: ["client"] }), { status: 403, code: "key-revoked" }, "an admin issuance");
  await t.rejects(admin.call("POST", "/v1/certificates", { csr: csr("other-name"), roles: ["client"] }), { status: 403, code: "key-revoked" }, "under another name too");
  const { token } = (await admin.call("POST", "/v1/tokens", { identity: "spiffe://postern.local/client/rekey", ttl: 300 })) as { token: string };
  const anonymous = new AdminClient({ url: gw.adminUrl, ca: gw.app.pki.caBundlePem });
  t.teardown(() => anonymous.close());
  await t.rejects(anonymous.call("POST", "/v1/enroll", { token, csr: csr("rekey") }), { status: 403, code: "key-revoked" }, "an enrollment");
  const fresh = createCsr({ privateKey: (await generateKeyPair("P-256")).privateKey, identity: "spiffe://postern.local/client/rekey" });
  t.ok(await anonymous.call("POST", "/v1/enroll", { token, csr: fresh }), "a new key enrolls with the same, unspent token");
});

t.test("CRL and OCSP state the same reason, unspecified included; -crl_check_all passes with the public files only", async (t) => {
  const leaf = await issue("unspecified");
  await revoke(leaf.serial, "unspecified");
  const answer = await ocsp(leaf.leafFile);
  t.match(answer.out, /: revoked/);
  t.match(answer.out, /Reason: unspecified/, "OCSP says unspecified");
  const crlFile = join(work, "both.pem");
  let text = "";
  for (const deadline = Date.now() + 30_000; !text.toUpperCase().includes(leaf.serial.toUpperCase()) && Date.now() < deadline; ) {
    await writeFile(crlFile, await (await fetch(`${gw.publicUrl}/crl.pem`)).text());
    text = (await sh("openssl", ["crl", "-in", crlFile, "-noout", "-text"])).out;
    if (!text.toUpperCase().includes(leaf.serial.toUpperCase())) await new Promise((r) => setTimeout(r, 100));
  }
  const entry = text.slice(text.toUpperCase().indexOf(leaf.serial.toUpperCase()));
  t.match(entry, /CRL Reason Code:\s*\n\s*Unspecified/, "and so does the CRL");
  const caFile = join(work, "public-ca.pem");
  await writeFile(caFile, await (await fetch(`${gw.publicUrl}/ca.pem`)).text());
  const good = await issue("checkall");
  const all = await sh("openssl", ["verify", "-crl_check_all", "-CAfile", caFile, "-CRLfile", crlFile, good.leafFile]);
  t.equal(all.code, 0, `a valid leaf passes -crl_check_all: ${all.out}`);
  const revokedAll = await sh("openssl", ["verify", "-crl_check_all", "-CAfile", caFile, "-CRLfile", crlFile, leaf.leafFile]);
  t.match(revokedAll.out, /certificate revoked/, "the revoked one does not");
  const root = await fetch(`${gw.publicUrl}/crl/root`);
  t.equal(root.headers.get("content-type"), "application/pkix-crl", "the root's CRL at its own URL (the issuing CA's CDP)");
});
