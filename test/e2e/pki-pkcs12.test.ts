import { X509Certificate } from "node:crypto";
import { stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import t, { type Test } from "tap";
import { startGateway } from "../helpers/gateway.js";
import { finished, runTool, spawnTs } from "../helpers/process.js";

t.setTimeout(240_000);
const sh = runTool;

const gw = await startGateway();
t.teardown(() => gw.stop());
const work = await gw.workDir();
const certs = gw.certs;
const caBundle = gw.caBundle;
const adminFlags = gw.adminFlags;
const clientFor = (name: string) => gw.adminClient(name);
const admin = await clientFor("admin");
const PASSWORD = "correct horse battery staple";

/** curl's POST of an unsigned JSON body to the data plane; -w appends the HTTP status. */
function curl(extra: string[]) {
  return sh("curl", [
    "-sS", "--max-time", "10", "--cacert", caBundle, ...extra,
    "-H", "content-type: application/json", "--data", "{}", "-w", "\n%{http_code}",
    `https://localhost:${gw.addresses.data.port}/v1/messages/orders`,
  ]);
}

/** openssl reads the bundle (leaf + issuing CA, MAC ok); curl presents it to the data plane. */
async function checkBundle(t: Test, file: string, identity: string, keyType: string): Promise<void> {
  const info = await sh("openssl", ["pkcs12", "-info", "-nokeys", "-in", file, "-passin", `pass:${PASSWORD}`]);
  t.equal(info.code, 0, info.stderr);
  const leaf = new X509Certificate(info.stdout.slice(info.stdout.indexOf("-----BEGIN CERTIFICATE-----")));
  t.match(leaf.subjectAltName, `URI:${identity}`);
  t.equal(leaf.publicKey.asymmetricKeyType, keyType);
  t.match(info.stdout, /CN *= *Postern Issuing CA 1/, "the issuing CA is in the bundle");
  t.match(info.stdout + info.stderr, /MAC: sha256/i, "integrity with HMAC-SHA-256");
  const wrong = await sh("openssl", ["pkcs12", "-info", "-nokeys", "-in", file, "-passin", "pass:wrong"]);
  t.not(wrong.code, 0, "a wrong password fails the MAC");

  const through = await curl(["--cert-type", "P12", "--cert", `${file}:${PASSWORD}`]);
  t.equal(through.code, 0, through.stderr);
  const [body, status] = through.stdout.split("\n") as [string, string];
  t.match(status, /^4\d\d$/, "an HTTP answer: the handshake passed");
  const problem = JSON.parse(body) as { code: string };
  t.ok(["signature-missing", "digest-missing"].includes(problem.code), `refused for the missing signature, not the identity (${problem.code})`);
}

t.test("POST /v1/certificates/pkcs12 (P-256): openssl reads it, curl gets through mTLS with it", async (t) => {
  const identity = "spiffe://postern.local/client/p12-ec";
  const answer = (await admin.call("POST", "/v1/certificates/pkcs12", { identity, password: PASSWORD, keyType: "P-256" })) as { pkcs12: string; identity: string };
  t.equal(answer.identity, identity);
  const file = join(work, "ec.p12");
  await writeFile(file, Buffer.from(answer.pkcs12, "base64"));
  await checkBundle(t, file, identity, "ec");
});

t.test("postern cert issue --p12 (RSA-2048): a 0600 bundle that openssl and curl accept", async (t) => {
  const identity = "spiffe://postern.local/client/p12-rsa";
  const file = join(work, "rsa.p12");
  const passwordFile = join(work, "password");
  await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  const result = await finished(spawnTs("src/cli/main.ts", [
    "cert", "issue", "--p12", file, "--id", identity, "--password-file", passwordFile, "--key-type", "RSA-2048", ...adminFlags,
  ]));
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, new RegExp(`issued [0-9a-f]+ for ${identity}`));
  t.equal((await stat(file)).mode & 0o777, 0o600);
  const key = await sh("openssl", ["pkcs12", "-in", file, "-passin", `pass:${PASSWORD}`, "-nocerts", "-nodes"]);
  t.match(key.stdout, /BEGIN PRIVATE KEY/, "the key is in the bundle");
  await checkBundle(t, file, identity, "rsa");
});

t.test("curl without a client certificate gets no HTTP answer", async (t) => {
  const result = await curl([]);
  t.not(result.code, 0, "curl fails");
  t.notMatch(result.stdout, /code/, "no problem+json, no HTTP at all");
  t.match(result.stdout.trim(), /^0*$/, "http_code 000");
});

t.test("an ordinary client certificate calling the admin API is forbidden", async (t) => {
  const demo = await clientFor("demo-client");
  await t.rejects(demo.call("POST", "/v1/tokens", { identity: "spiffe://postern.local/client/x" }), { status: 403, code: "forbidden" });
  await t.rejects(demo.call("GET", "/v1/certificates"), { status: 403, code: "forbidden" });
  await t.rejects(demo.call("POST", "/v1/certificates/pkcs12", { identity: "spiffe://postern.local/client/x", password: PASSWORD }), { status: 403, code: "forbidden" });
  const cli = await finished(spawnTs("src/cli/main.ts", [
    "cert", "list", "--admin-url", gw.adminUrl, "--cert", join(certs, "demo-client.crt"), "--key", join(certs, "demo-client.key"), "--ca", caBundle,
  ]));
  t.equal(cli.code, 1, "the CLI exits 1");
  t.match(cli.stderr, /403 forbidden/, "and prints the code");
});
