import t, { type Test } from "tap";
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { initCa, type CaMaterial } from "../../../src/pki/ca/ca.js";
import { issueFromCsr, parseCsr, validateCsr } from "../../../src/pki/issue/csr.js";
import { DEFAULT_CLIENT_PROFILE, defineProfile } from "../../../src/pki/issue/profile.js";
import { identityFromCertificate } from "../../../src/pki/identity.js";
import { PosternError, type ErrorCode } from "../../../src/errors.js";

t.setTimeout(180_000);
const run = promisify(execFile);

let dir = "";
let ca: CaMaterial;
t.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "postern-csr-"));
  ca = await initCa({ dir, passphrase: "csr test passphrase" });
});
t.teardown(() => rm(dir, { recursive: true, force: true }));

let counter = 0;
/** Makes a key with openssl and a CSR for it with the given -subj and -addext options. */
async function opensslCsr(keyArgs: string[], subj: string, addext: string[] = []): Promise<string> {
  const n = ++counter;
  const key = join(dir, `k${n}.pem`);
  await run("openssl", ["genpkey", ...keyArgs, "-out", key]);
  const args = ["req", "-new", "-key", key, "-subj", subj, "-out", join(dir, `r${n}.csr`)];
  for (const e of addext) args.push("-addext", e);
  await run("openssl", args);
  return readFile(join(dir, `r${n}.csr`), "utf8");
}

const P256 = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
const ALICE = "spiffe://postern.local/client/alice";

async function refusedWith(t: Test, p: Promise<unknown>, code: ErrorCode, msg: string): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof PosternError, `${msg}: PosternError`);
  t.equal((err as PosternError).code, code, msg);
}

t.test("a good CSR of each key type is certified as a clientAuth leaf openssl accepts", async (t) => {
  const keyTypes: Record<string, string[]> = {
    "P-256": P256,
    "P-384": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    Ed25519: ["-algorithm", "ED25519"],
    "RSA-2048": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
  };
  for (const [name, args] of Object.entries(keyTypes)) {
    const csrPem = await opensslCsr(args, "/CN=alice/OU=client", [`subjectAltName=URI:${ALICE}`]);
    const issued = await issueFromCsr({ issuer: ca.issuer, csrPem, profile: DEFAULT_CLIENT_PROFILE, crlUrl: "http://ca/crl", ocspUrl: "http://ca/ocsp" });
    const leaf = join(dir, `leaf-${name}.crt`);
    await writeFile(leaf, issued.pem);
    await writeFile(join(dir, "root.crt"), ca.rootCertPem);
    await writeFile(join(dir, "issuing.crt"), ca.issuingCertPem);
    const { stdout } = await run("openssl", ["verify", "-purpose", "sslclient", "-CAfile", join(dir, "root.crt"), "-untrusted", join(dir, "issuing.crt"), leaf]);
    t.match(stdout, /: OK/, `${name} verifies`);
    const id = identityFromCertificate(new X509Certificate(issued.pem));
    t.equal(id.id, ALICE);
    t.same(id.roles, ["client"]);
    t.equal(id.serial, issued.serial);
    t.equal(issued.serial.length, 32);
    t.ok(issued.notAfterMs - issued.notBeforeMs <= 24 * 3600_000 + 60_000, "24 h default lifetime");
    const { stdout: text } = await run("openssl", ["x509", "-in", leaf, "-noout", "-text"]);
    t.match(text, /TLS Web Client Authentication/);
    t.notMatch(text, /TLS Web Server Authentication/);
    t.match(text, /CA:FALSE/);
  }
});

t.test("CSR asking for CA powers is refused with csr-ca-request", async (t) => {
  const ca1 = await opensslCsr(P256, "/CN=alice", [`subjectAltName=URI:${ALICE}`, "basicConstraints=critical,CA:TRUE"]);
  await refusedWith(t, issueFromCsr({ issuer: ca.issuer, csrPem: ca1, profile: DEFAULT_CLIENT_PROFILE }), "csr-ca-request", "CA:TRUE");
  const ca2 = await opensslCsr(P256, "/CN=alice", [`subjectAltName=URI:${ALICE}`, "keyUsage=critical,keyCertSign"]);
  await refusedWith(t, issueFromCsr({ issuer: ca.issuer, csrPem: ca2, profile: DEFAULT_CLIENT_PROFILE }), "csr-ca-request", "keyCertSign");
  const ok = await opensslCsr(P256, "/CN=alice", [`subjectAltName=URI:${ALICE}`, "basicConstraints=CA:FALSE", "keyUsage=digitalSignature"]);
  t.ok(await issueFromCsr({ issuer: ca.issuer, csrPem: ok, profile: DEFAULT_CLIENT_PROFILE }), "CA:FALSE is fine");
});

t.test("forbidden names are refused with csr-forbidden-name", async (t) => {
  const profile = DEFAULT_CLIENT_PROFILE;
  const cases: Array<[string, string, string[]]> = [
    ["extra DNS SAN", "/CN=alice", [`subjectAltName=URI:${ALICE},DNS:evil.example`]],
    ["identity outside the pattern", "/CN=root", ["subjectAltName=URI:spiffe://postern.local/admin/root"]],
    ["email SAN", "/CN=alice", [`subjectAltName=URI:${ALICE},email:a@example.com`]],
    ["CN differs from the identity", "/CN=mallory", [`subjectAltName=URI:${ALICE}`]],
    ["role not in profile", "/CN=alice/OU=admin", [`subjectAltName=URI:${ALICE}`]],
    ["no identity at all", "/O=Acme", []],
  ];
  for (const [name, subj, ext] of cases) {
    const csrPem = await opensslCsr(P256, subj, ext);
    await refusedWith(t, issueFromCsr({ issuer: ca.issuer, csrPem, profile }), "csr-forbidden-name", name);
  }
  const tokenBound = await opensslCsr(P256, "/CN=bob", []);
  await refusedWith(t, issueFromCsr({ issuer: ca.issuer, csrPem: tokenBound, profile, identity: ALICE }), "csr-forbidden-name", "CN other than the token's identity");
  const issued = await issueFromCsr({ issuer: ca.issuer, csrPem: await opensslCsr(P256, "/CN=alice", []), profile, identity: ALICE, roles: ["client"] });
  t.equal(issued.identity, ALICE, "token binding supplies the identity");

  const withSans = defineProfile({ name: "svc", allowedSanPatterns: ["dns:*.svc.postern.local", "ip:10.0.0.*"] });
  const good = await opensslCsr(P256, "/CN=alice", [`subjectAltName=URI:${ALICE},DNS:a.svc.postern.local,IP:10.0.0.7`]);
  const v = validateCsr(parseCsr(good), withSans);
  t.same(v.dnsNames, ["a.svc.postern.local"]);
  t.same(v.ipAddresses, ["10.0.0.7"]);
  const deep = await opensslCsr(P256, "/CN=alice", [`subjectAltName=URI:${ALICE},DNS:a.b.svc.postern.local`]);
  t.throws(() => validateCsr(parseCsr(deep), withSans), { code: "csr-forbidden-name" }, "* does not cross a dot");
});

t.test("weak or disallowed keys are refused with csr-weak-key", async (t) => {
  const rsa1024 = await opensslCsr(["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"], "/CN=alice", [`subjectAltName=URI:${ALICE}`]);
  await refusedWith(t, issueFromCsr({ issuer: ca.issuer, csrPem: rsa1024, profile: DEFAULT_CLIENT_PROFILE }), "csr-weak-key", "RSA-1024");
  const p521 = await opensslCsr(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"], "/CN=alice", [`subjectAltName=URI:${ALICE}`]);
  await refusedWith(t, issueFromCsr({ issuer: ca.issuer, csrPem: p521, profile: DEFAULT_CLIENT_PROFILE }), "csr-weak-key", "P-521 is not a profile key type");
  const ed = await opensslCsr(["-algorithm", "ED25519"], "/CN=alice", [`subjectAltName=URI:${ALICE}`]);
  const noEd = defineProfile({ name: "ec-only", allowedKeyTypes: ["P-256"] });
  await refusedWith(t, issueFromCsr({ issuer: ca.issuer, csrPem: ed, profile: noEd }), "csr-weak-key", "Ed25519 not in profile");
  const rsa2048 = await opensslCsr(["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], "/CN=alice", [`subjectAltName=URI:${ALICE}`]);
  const strict = defineProfile({ name: "rsa3072", minRsaBits: 3072 });
  await refusedWith(t, issueFromCsr({ issuer: ca.issuer, csrPem: rsa2048, profile: strict }), "csr-weak-key", "RSA-2048 under a 3072 minimum");
});

t.test("bad signatures and garbage are refused with csr-invalid", async (t) => {
  const csrPem = await opensslCsr(P256, "/CN=alice", [`subjectAltName=URI:${ALICE}`]);
  const der = parseCsr(csrPem).der.slice();
  der[der.length - 5] = (der[der.length - 5] as number) ^ 0x01; // inside the signature
  await refusedWith(t, issueFromCsr({ issuer: ca.issuer, csrPem: der, profile: DEFAULT_CLIENT_PROFILE }), "csr-invalid", "flipped signature bit");
  const tampered = parseCsr(csrPem).der.slice();
  const at = Buffer.from(tampered).indexOf("alice");
  tampered[at] = "m".charCodeAt(0); // inside the signed info
  await refusedWith(t, issueFromCsr({ issuer: ca.issuer, csrPem: tampered, profile: DEFAULT_CLIENT_PROFILE }), "csr-invalid", "tampered subject");
  for (const junk of ["hello", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----", ca.rootCertPem]) {
    await refusedWith(t, issueFromCsr({ issuer: ca.issuer, csrPem: junk, profile: DEFAULT_CLIENT_PROFILE }), "csr-invalid", `junk ${junk.slice(0, 12)}`);
  }
  const good = parseCsr(csrPem).der;
  for (let cut = 1; cut < good.length; cut += 17) {
    t.throws(() => parseCsr(good.subarray(0, cut)), { code: "csr-invalid" }, `truncated at ${cut}`);
  }
  t.throws(() => parseCsr(new Uint8Array([...good, 0])), { code: "csr-invalid" }, "trailing byte");
});

t.test("lifetime is capped by the profile", async (t) => {
  const csrPem = await opensslCsr(P256, "/CN=alice", [`subjectAltName=URI:${ALICE}`]);
  const now = Date.now();
  const issued = await issueFromCsr({ issuer: ca.issuer, csrPem, profile: DEFAULT_CLIENT_PROFILE, lifetimeSeconds: 30 * 86_400, now: () => now });
  t.equal(issued.notAfterMs, Math.floor((now + 86_400_000) / 1000) * 1000);
  const short = await issueFromCsr({ issuer: ca.issuer, csrPem, profile: DEFAULT_CLIENT_PROFILE, lifetimeSeconds: 600, now: () => now });
  t.equal(short.notAfterMs, Math.floor((now + 600_000) / 1000) * 1000);
  t.equal(short.notBeforeMs, Math.floor((now - 60_000) / 1000) * 1000, "backdated 60 s");
});
