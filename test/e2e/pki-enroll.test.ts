import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import t from "tap";
import { AdminClient, PosternClient } from "../../src/client/index.js";
import { createCsr } from "../../src/pki/issue/csr-create.js";
import { identityFromCertificate } from "../../src/pki/identity.js";
import { generateKeyPair } from "../../src/pki/keys/keys.js";
import { startGateway } from "../helpers/gateway.js";
import { finished, runTool, spawnTs } from "../helpers/process.js";

t.setTimeout(240_000);

const gw = await startGateway();
t.teardown(() => gw.stop());
const work = await gw.workDir();
const caBundle = gw.caBundle;
const adminUrl = gw.adminUrl;
const adminFlags = gw.adminFlags;
const admin = await gw.adminClient();
/** No client certificate: what a machine that is not enrolled yet has. */
const anonymous = new AdminClient({ url: adminUrl, ca: await readFile(caBundle) });
t.teardown(() => anonymous.close());

const cli = (args: string[]) => finished(spawnTs("src/cli/main.ts", args, { env: { POSTERN_CA_PASSPHRASE: "" } }));
const id = (name: string) => `spiffe://postern.local/client/${name}`;

/**
 * One enrollment call on a fresh connection. A resumed anonymous TLS session reads as
 * `authorized` with no peer certificate (src/tls/handshake.ts), which crashes the admin
 * listener; new clients never resume, so these tests do not depend on that fix.
 */
async function enrollFresh(body: Record<string, unknown>): Promise<unknown> {
  const client = new AdminClient({ url: adminUrl, ca: await readFile(caBundle) });
  try {
    return await client.call("POST", "/v1/enroll", body);
  } finally {
    await client.close();
  }
}

async function token(identity: string, ttl: string | number = "5m"): Promise<string> {
  return ((await admin.call("POST", "/v1/tokens", { identity, ttl })) as { token: string }).token;
}

async function csrFor(identity?: string): Promise<string> {
  return createCsr({ privateKey: (await generateKeyPair("P-256")).privateKey, identity });
}

t.test("token create + enroll through the CLI; the same token a second time is token-invalid", async (t) => {
  const created = await cli(["token", "create", "--id", id("enrolled"), "--ttl", "5m", ...adminFlags]);
  t.equal(created.code, 0, created.stderr);
  const [tokenLine, expiryLine] = created.stdout.split("\n");
  t.match(tokenLine, /^pt_[A-Za-z0-9_-]{43}$/, "the token alone on the first line");
  t.match(expiryLine, /^expires \d{4}-\d\d-\d\dT/);

  const out = join(work, "enrolled");
  const enrolled = await cli(["enroll", "--url", adminUrl, "--token", tokenLine!, "--ca", caBundle, "--out", out, "--name", "svc"]);
  t.equal(enrolled.code, 0, enrolled.stderr);
  const keyPem = await readFile(join(out, "svc.key"), "utf8");
  const chainPem = await readFile(join(out, "svc.crt"), "utf8");
  t.equal((await stat(join(out, "svc.key"))).mode & 0o777, 0o600, "the key is 0600");
  t.equal(await readFile(join(out, "ca-bundle.pem"), "utf8"), await readFile(caBundle, "utf8"));
  const leaf = new X509Certificate(chainPem);
  t.ok(leaf.checkPrivateKey(createPrivateKey(keyPem)), "the certificate is for the key made on this side");
  const identity = identityFromCertificate(leaf);
  t.equal(identity.id, id("enrolled"), "the token's identity, though the CSR named none");
  t.same(identity.roles, ["client"]);
  t.match(enrolled.stdout, identity.serial);

  const client = new PosternClient({ url: gw.dataUrl, cert: chainPem, key: keyPem, ca: await readFile(join(out, "ca-bundle.pem")), attempts: 1 });
  t.teardown(() => client.close());
  t.equal((await client.send("/v1/messages/orders", "{}")).status, 202, "the enrolled certificate sends messages");

  const again = await cli(["enroll", "--url", adminUrl, "--token", tokenLine!, "--ca", caBundle, "--out", out, "--name", "svc2"]);
  t.equal(again.code, 1);
  t.match(again.stderr, /401 token-invalid/);
  await t.rejects(anonymous.call("POST", "/v1/enroll", { token: tokenLine, csr: await csrFor() }), { status: 401, code: "token-invalid" });
});

t.test("enroll --ca-url fetches the bundle from the public listener", async (t) => {
  const out = join(work, "fetched");
  const result = await cli(["enroll", "--url", adminUrl, "--token", await token(id("fetched")), "--ca-url", `${gw.publicUrl}/ca.pem`, "--out", out, "--id", id("fetched")]);
  t.equal(result.code, 0, result.stderr);
  t.match(result.stderr, /SHA-256 [0-9A-F:]{95}/, "prints the root fingerprint to compare");
  t.equal(identityFromCertificate(new X509Certificate(await readFile(join(out, "fetched.crt")))).id, id("fetched"), "--name defaults to the last segment of --id");
  t.equal((await runTool("openssl", ["verify", "-CAfile", join(out, "ca-bundle.pem"), join(out, "fetched.crt")])).code, 0);
});

t.test("an expired token is token-invalid", async (t) => {
  const short = await token(id("late"), 1);
  await new Promise((r) => setTimeout(r, 1_200));
  await t.rejects(anonymous.call("POST", "/v1/enroll", { token: short, csr: await csrFor() }), { status: 401, code: "token-invalid" });
  await t.rejects(anonymous.call("POST", "/v1/enroll", { token: "pt_" + "A".repeat(43), csr: await csrFor() }), { status: 401, code: "token-invalid" });
});

t.test("a token is bound to its identity: a CSR asking another is refused naming the bound identity, and the token stays usable", async (t) => {
  const bound = await token(id("alice"));
  const refused = await enrollFresh({ token: bound, csr: await csrFor(id("mallory")) }).catch((e: unknown) => e);
  t.match(refused, { status: 403, code: "csr-forbidden-name" });
  t.match((refused as { problem: { detail: string } }).problem.detail, `this token is bound to ${id("alice")}`, "the message names the real cause");
  await t.rejects(enrollFresh({ token: bound, csr: "not a CSR" }), { status: 400, code: "csr-invalid" }, "a bad CSR is refused too");
  const ok = (await enrollFresh({ token: bound, csr: await csrFor(id("alice")) })) as { identity: string };
  t.equal(ok.identity, id("alice"), "refused attempts did not spend the token: the right CSR enrolls");
  await t.rejects(enrollFresh({ token: bound, csr: await csrFor(id("alice")) }), { status: 401, code: "token-invalid" }, "a success spends it");
});

t.test("a token survives 4 refused attempts; the 5th deletes it", async (t) => {
  const bound = await token(id("guess"));
  for (let i = 1; i <= 5; i++) {
    const refused = await enrollFresh({ token: bound, csr: await csrFor(id("other")) }).catch((e: unknown) => e);
    t.match(refused, { status: 403, code: "csr-forbidden-name" }, `attempt ${i}`);
  }
  await t.rejects(enrollFresh({ token: bound, csr: await csrFor(id("guess")) }), { status: 401, code: "token-invalid" });
});

t.test("token create refuses what the profile would refuse: exit 2, 403, nothing stored", async (t) => {
  const outside = await cli(["token", "create", "--id", "spiffe://elsewhere/client/x", ...adminFlags]);
  t.equal(outside.code, 2, outside.stderr);
  t.match(outside.stderr, /403 csr-forbidden-name: profile client does not allow the identity spiffe:\/\/elsewhere\/client\/x/);
  t.equal(outside.stdout, "", "no token printed");
  const role = await cli(["token", "create", "--id", id("roles"), "--role", "admin", ...adminFlags]);
  t.equal(role.code, 2, role.stderr);
  t.match(role.stderr, /does not allow the role\(s\) admin/);
  await t.rejects(admin.call("POST", "/v1/tokens", { identity: "spiffe://elsewhere/client/x", ttl: 60 }), { status: 403, code: "csr-forbidden-name" });
  const audit = await readFile(join(gw.dir, "data", "audit.jsonl"), "utf8");
  t.notMatch(audit, /elsewhere/, "nothing was stored or audited as created");
});

/** An openssl-made CSR: a fresh key of `newkey`, the subject and -addext lines given. */
async function opensslCsr(name: string, newkey: string[], subj: string, addext: string[]): Promise<string> {
  const args = ["req", "-new", ...newkey, "-nodes", "-keyout", join(work, `${name}.key`), "-subj", subj, "-out", join(work, `${name}.csr`)];
  for (const e of addext) args.push("-addext", e);
  const made = await runTool("openssl", args);
  if (made.code !== 0) throw new Error(`openssl ${args[0]} failed: ${made.stderr}`);
  return readFile(join(work, `${name}.csr`), "utf8");
}

t.test("CSR policy: CA powers, forbidden names, weak keys and garbage are refused with their codes", async (t) => {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
  const san = `subjectAltName=URI:${id("bob")}`;
  const cases: Array<[string, Promise<string>, number, string]> = [
    ["CA:TRUE", opensslCsr("ca", ec, "/CN=bob", [san, "basicConstraints=critical,CA:TRUE"]), 403, "csr-ca-request"],
    ["keyCertSign", opensslCsr("ku", ec, "/CN=bob", [san, "keyUsage=critical,keyCertSign"]), 403, "csr-ca-request"],
    ["a DNS SAN", opensslCsr("dns", ec, "/CN=bob", [`${san},DNS:evil.example`]), 403, "csr-forbidden-name"],
    ["an identity outside the profile", opensslCsr("other", ec, "/CN=bob", ["subjectAltName=URI:spiffe://elsewhere/admin/bob"]), 403, "csr-forbidden-name"],
    ["RSA-1024", opensslCsr("rsa1024", ["-newkey", "rsa:1024"], "/CN=bob", [san]), 400, "csr-weak-key"],
    ["garbage", Promise.resolve("-----BEGIN CERTIFICATE REQUEST-----\nMIIBAAAAAAAA\n-----END CERTIFICATE REQUEST-----\n"), 400, "csr-invalid"],
    ["not PEM", Promise.resolve("hello"), 400, "csr-invalid"],
  ];
  for (const [what, csr, status, code] of cases) {
    await t.rejects(admin.call("POST", "/v1/certificates", { csr: await csr }), { status, code }, what);
  }
  const good = await opensslCsr("good", ec, "/CN=bob/OU=client", [san]);
  const issued = (await admin.call("POST", "/v1/certificates", { csr: good })) as { identity: string; roles: string[] };
  t.equal(issued.identity, id("bob"), "the same CSR without the bad part is certified");
  t.same(issued.roles, ["client"]);
  const enrolled = anonymous.call("POST", "/v1/enroll", { token: await token(id("bob")), csr: await opensslCsr("rsa1024b", ["-newkey", "rsa:1024"], "/CN=bob", [san]) });
  await t.rejects(enrolled, { status: 400, code: "csr-weak-key" }, "enrollment applies the same policy");
});
