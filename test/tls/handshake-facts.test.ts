import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, createServer, type TLSSocket } from "node:tls";
import { promisify } from "node:util";
import t from "tap";
import { identityFromCertificate } from "../../src/pki/identity.js";
import type { HandshakeFacts } from "../../src/tls/admission.js";
import { handshakeFacts } from "../../src/tls/handshake-facts.js";

const run = promisify(execFile);
const dir = await mkdtemp(join(tmpdir(), "postern-handshake-facts-"));
t.teardown(() => rm(dir, { recursive: true, force: true }));

/** A key and a certificate made by openssl, signed by `ca` (self-signed without one). */
async function make(name: string, subject: string, extensions: string[], ca?: string): Promise<{ key: Buffer; cert: Buffer }> {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  const signer = ca ? ["-CA", join(dir, `${ca}.crt`), "-CAkey", join(dir, `${ca}.key`)] : [];
  await run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-subj", subject, "-days", "2", ...signer, ...extensions.flatMap((e) => ["-addext", e])]);
  return { key: await readFile(key), cert: await readFile(cert) };
}

const ca = await make("ca", "/CN=Facts Test CA", ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign"]);
const server = await make("server", "/CN=localhost", ["subjectAltName=DNS:localhost"], "ca");
const alice = await make("alice", "/OU=client/OU=ops/CN=alice", ["subjectAltName=URI:spiffe://postern.local/client/alice"], "ca");
const bob = await make("bob", "/CN=bob", [], "ca");
const stranger = await make("stranger", "/CN=alice", ["subjectAltName=URI:spiffe://postern.local/client/alice"]);

const facts: HandshakeFacts[] = [];
const listener = createServer({ key: server.key, cert: server.cert, ca: ca.cert, requestCert: true, rejectUnauthorized: false }, (socket: TLSSocket) => {
  facts.push(handshakeFacts(socket));
  socket.end();
});
await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
t.teardown(() => listener.close());
const port = (listener.address() as { port: number }).port;

/** One handshake with `client`'s certificate (none when undefined); resolves with what the server made of it. */
async function handshake(client: { key: Buffer; cert: Buffer } | undefined): Promise<HandshakeFacts> {
  const before = facts.length;
  await new Promise<void>((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1", servername: "localhost", ca: ca.cert, ...(client ?? {}) });
    socket.on("error", reject).on("close", () => resolve());
    socket.resume();
  });
  const seen = facts[before];
  if (facts.length !== before + 1 || !seen) throw new Error(`the server saw ${facts.length - before} connections, not one`);
  return seen;
}

t.test("a certificate's identity is derived from its DER, the same on every handshake", async (t) => {
  const first = await handshake(alice);
  const again = await handshake(alice);
  const expected = identityFromCertificate(new X509Certificate(alice.cert));
  t.same(first.certificate?.identity, expected, "SAN URI, OU roles, serial, fingerprint, notAfter");
  t.same(first.certificate?.identity?.roles, ["client", "ops"]);
  t.ok(first.certificate?.der.equals(new X509Certificate(alice.cert).raw), "the leaf's DER");
  t.equal(first.certificate?.notBeforeMs, Date.parse(new X509Certificate(alice.cert).validFrom));
  t.ok(first.authorized && again.authorized, "OpenSSL's verdict is read on each connection");
  t.equal(again.certificate, first.certificate, "the second handshake reuses what the first derived");
  t.ok(Object.isFrozen(first.certificate?.identity) && Object.isFrozen(first.certificate?.identity?.roles), "shared, so frozen");
});

t.test("another certificate, even one naming the same identity, is derived on its own; the verdict is never cached", async (t) => {
  const b = await handshake(bob);
  t.equal(b.certificate?.identity?.id, "bob", "CN when there is no SAN URI");
  t.same(b.certificate?.identity?.roles, []);
  const forged = await handshake(stranger);
  t.equal(forged.certificate?.identity?.id, "spiffe://postern.local/client/alice");
  t.not(forged.certificate?.identity?.fingerprint, (await handshake(alice)).certificate?.identity?.fingerprint, "told apart by the certificate, not the name");
  t.equal(forged.authorized, false, "and OpenSSL's refusal of the unknown issuer is its own");
  t.equal(forged.authorizationError, "DEPTH_ZERO_SELF_SIGNED_CERT");
});

t.test("no certificate: no certificate facts", async (t) => {
  const none = await handshake(undefined);
  t.equal(none.certificate, undefined);
  t.equal(none.authorized, false);
});
