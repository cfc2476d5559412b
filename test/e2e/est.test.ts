/**
 * EST (RFC 7030) driven only by tools that share no code with Postern: curl for HTTP and TLS,
 * openssl for keys, CSRs, CMS and verification, base64 from coreutils. Each shell line is what
 * a user would type (README "Enrollment over EST"). The data-plane check uses Postern's client,
 * which is what signs messages; the EST side never touches Postern's code.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import t, { type Test } from "tap";
import { PosternClient } from "../../src/client/index.js";
import { startGateway } from "../helpers/gateway.js";
import { runTool } from "../helpers/process.js";

t.setTimeout(300_000);

const gw = await startGateway({
  pki: {
    profiles: {
      client: {},
      admin: { allowedIdentityPatterns: ["spiffe://postern.local/admin/*"], roles: ["admin"] },
      devices: { allowedIdentityPatterns: ["spiffe://postern.local/device/*"], roles: ["client"], allowedKeyTypes: ["P-256", "P-384"], serverKeygen: true },
    },
  },
});
t.teardown(() => gw.stop());
const admin = await gw.adminClient();
const work = await gw.workDir();
const EST = `${gw.adminUrl}/.well-known/est`;
const id = (name: string) => `spiffe://postern.local/client/${name}`;

/** Runs a bash line in the scratch directory, with $EST, $CA (the CA bundle) and $ADMIN_URL set. */
async function sh(line: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return runTool("bash", ["-c", `set -o pipefail; cd '${work}' && EST='${EST}' CA='${gw.caBundle}' && ${line}`]);
}

async function ok(t: Test, line: string): Promise<string> {
  const result = await sh(line);
  t.equal(result.code, 0, result.code === 0 ? line : `${line}\n${result.stderr}`);
  return result.stdout;
}

async function token(identity: string, profile?: string): Promise<string> {
  return ((await admin.call("POST", "/v1/tokens", { identity, ttl: "10m", ...(profile ? { profile } : {}) })) as { token: string }).token;
}

/** A fresh P-256 key `<name>.key` and its CSR `<name>.b64` (base64 DER), made by openssl. */
async function csr(t: Test, name: string, subj: string, addext: string[] = []): Promise<void> {
  const ext = addext.map((e) => `-addext '${e}'`).join(" ");
  await ok(t, `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ${name}.key -subj '${subj}' ${ext} -outform DER | base64 > ${name}.b64`);
}

/** POSTs `<csr>.b64` to an EST operation; the body lands in `<out>`; returns the HTTP status and headers. */
async function post(operation: string, csrName: string, out: string, auth: string): Promise<{ status: number; headers: string; body: string; curlExit: number }> {
  const result = await sh(
    `curl -s --cacert "$CA" ${auth} -H 'Content-Type: application/pkcs10' --data-binary @${csrName}.b64 -D ${out}.headers -o ${out} -w '%{http_code}' "$EST/${operation}"`,
  );
  return {
    curlExit: result.code,
    status: Number(result.stdout),
    headers: await readFile(join(work, `${out}.headers`), "utf8").catch(() => ""),
    body: await readFile(join(work, out), "utf8").catch(() => ""),
  };
}

t.test("cacerts: base64 certs-only PKCS#7 that openssl prints as the CA chain, also under a profile label", async (t) => {
  const printed = await ok(t, `curl -s --cacert "$CA" "$EST/cacerts" | base64 -d | openssl pkcs7 -inform DER -print_certs -out cacerts.pem && cat cacerts.pem`);
  const bundle = await readFile(gw.caBundle, "utf8");
  const certsOf = (pem: string) => pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  t.same(certsOf(printed), certsOf(bundle), "the issuing CA and the root, as in ca-bundle.pem");
  t.equal(certsOf(printed).length, 2);
  const headers = await ok(t, `curl -s -o /dev/null -D - --cacert "$CA" "$EST/client/cacerts"`);
  t.match(headers, /^HTTP\/1\.1 200/);
  t.match(headers, /content-type: application\/pkcs7-mime; smime-type=certs-only/i);
  t.match(headers, /content-transfer-encoding: base64/i);
  t.equal((await sh(`curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" "$EST/no-such-profile/cacerts"`)).stdout, "404", "an unknown label");
});

t.test("simpleenroll with a token as the Basic password: the certificate verifies against cacerts and sends a message", async (t) => {
  const tok = await token(id("est-device"));
  await csr(t, "device", "/CN=est-device");
  const answer = await post("simpleenroll", "device", "device.p7", `-u "device:${tok}"`);
  t.equal(answer.status, 200, "enrolled");
  t.match(answer.headers, /content-type: application\/pkcs7-mime; smime-type=certs-only/i);
  await ok(t, `base64 -d device.p7 | openssl pkcs7 -inform DER -print_certs -out device.crt`);
  await ok(t, `curl -s --cacert "$CA" "$EST/cacerts" | base64 -d | openssl pkcs7 -inform DER -print_certs -out cacerts.pem`);
  t.match(await ok(t, `openssl verify -CAfile cacerts.pem device.crt`), /device\.crt: OK/);
  t.match(await ok(t, `openssl x509 -in device.crt -noout -ext subjectAltName`), `URI:${id("est-device")}`, "the token's identity");
  t.match(await ok(t, `openssl x509 -in device.crt -noout -pubkey | openssl md5; openssl pkey -in device.key -pubout | openssl md5`), /^(.+)\n\1\n$/, "for the key made by openssl");

  // The data plane wants the intermediate with the leaf: the chain is the leaf plus cacerts' first.
  const chain = (await readFile(join(work, "device.crt"), "utf8")) + (await readFile(join(work, "cacerts.pem"), "utf8")).split(/(?<=-----END CERTIFICATE-----\n)/)[0];
  const client = new PosternClient({ url: gw.dataUrl, cert: chain, key: await readFile(join(work, "device.key")), ca: await readFile(gw.caBundle), attempts: 1 });
  t.teardown(() => client.close());
  t.equal((await client.send("/v1/messages/orders", "{}")).status, 202, "a signed message from the EST certificate gets 202");

  const again = await post("simpleenroll", "device", "again.json", `-u "device:${tok}"`);
  t.equal(again.status, 401, "a second use of the token");
  t.match(JSON.parse(again.body), { code: "token-invalid" });
  t.match(again.headers, /www-authenticate: Basic realm="postern-est"/i, "with the challenge EST clients wait for");
});

t.test("a forbidden name is refused 403 csr-forbidden-name, and the token still enrolls; Bearer works too", async (t) => {
  const tok = await token(id("alice"));
  await csr(t, "mallory", "/CN=mallory", [`subjectAltName=URI:${id("mallory")}`]);
  const refused = await post("simpleenroll", "mallory", "mallory.json", `-H "Authorization: Bearer ${tok}"`);
  t.equal(refused.status, 403);
  t.match(JSON.parse(refused.body), { code: "csr-forbidden-name" });
  await csr(t, "weak", "/CN=alice");
  await ok(t, `openssl req -new -newkey rsa:1024 -nodes -keyout weak.key -subj /CN=alice -outform DER | base64 > weak.b64`);
  const weak = await post("simpleenroll", "weak", "weak.json", `-H "Authorization: Bearer ${tok}"`);
  t.equal(weak.status, 400);
  t.match(JSON.parse(weak.body), { code: "csr-weak-key" });
  const garbage = await sh(`printf 'not base64!' > garbage.b64`).then(() => post("simpleenroll", "garbage", "garbage.json", `-H "Authorization: Bearer ${tok}"`));
  t.equal(garbage.status, 400);
  t.match(JSON.parse(garbage.body), { code: "csr-invalid" });
  const json = await sh(`curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer ${tok}" -H 'Content-Type: application/json' --data-binary @mallory.b64 "$EST/simpleenroll"`);
  t.equal(json.stdout, "415", "a CSR must be application/pkcs10");

  await csr(t, "alice", "/CN=alice");
  const enrolled = await post("simpleenroll", "alice", "alice.p7", `-H "Authorization: Bearer ${tok}"`);
  t.equal(enrolled.status, 200, "refusals did not spend the token");
  t.match(await ok(t, `base64 -d alice.p7 | openssl pkcs7 -inform DER -print_certs | openssl x509 -noout -ext subjectAltName`), `URI:${id("alice")}`);
});

t.test("no credentials: 401 with a challenge; a label must be the token's profile", async (t) => {
  await csr(t, "nobody", "/CN=nobody");
  const anonymous = await post("simpleenroll", "nobody", "nobody.json", "");
  t.equal(anonymous.status, 401);
  t.match(JSON.parse(anonymous.body), { code: "unauthenticated" });
  t.match(anonymous.headers, /www-authenticate: Basic realm="postern-est", Bearer realm="postern-est"/i);

  const tok = await token(id("labelled"));
  await csr(t, "labelled", "/CN=labelled");
  const wrong = await post("admin/simpleenroll", "labelled", "wrong.json", `-u "x:${tok}"`);
  t.equal(wrong.status, 403, "a client token under the admin label");
  t.match(JSON.parse(wrong.body), { code: "forbidden" });
  const right = await post("client/simpleenroll", "labelled", "labelled.p7", `-u "x:${tok}"`);
  t.equal(right.status, 200, "under its own profile's label");
});

t.test("simplereenroll with the current certificate: a new serial; the same identity only; a revoked certificate is refused", async (t) => {
  const tok = await token(id("renewer"));
  await csr(t, "renewer", "/CN=renewer");
  t.equal((await post("simpleenroll", "renewer", "renewer.p7", `-u "x:${tok}"`)).status, 200);
  await ok(t, `base64 -d renewer.p7 | openssl pkcs7 -inform DER -print_certs -out renewer.crt`);
  await ok(t, `curl -s --cacert "$CA" "$EST/cacerts" | base64 -d | openssl pkcs7 -inform DER -print_certs -out cacerts.pem`);
  // curl sends the intermediate along with the leaf from one file.
  await ok(t, `openssl x509 -in renewer.crt > renewer-chain.pem && openssl x509 -in cacerts.pem >> renewer-chain.pem`);
  const mtls = `--cert renewer-chain.pem --key renewer.key`;

  await csr(t, "renewed", "/CN=renewer");
  const renewed = await post("simplereenroll", "renewed", "renewed.p7", mtls);
  t.equal(renewed.status, 200, "renewed");
  const serial = async (file: string) => (await ok(t, `openssl x509 -in ${file} -noout -serial`)).trim();
  await ok(t, `base64 -d renewed.p7 | openssl pkcs7 -inform DER -print_certs -out renewed.crt`);
  t.not(await serial("renewed.crt"), await serial("renewer.crt"), "a new serial");
  t.match(await ok(t, `openssl verify -CAfile cacerts.pem renewed.crt`), /OK/);
  t.match(await ok(t, `openssl x509 -in renewed.crt -noout -ext subjectAltName`), `URI:${id("renewer")}`);

  await csr(t, "other", "/CN=someone-else");
  const other = await post("simplereenroll", "other", "other.json", mtls);
  t.equal(other.status, 403, "a CSR for another identity");
  t.match(JSON.parse(other.body), { code: "csr-forbidden-name" });

  await csr(t, "second", "/CN=renewer");
  const byCert = await post("simpleenroll", "second", "second.p7", mtls);
  t.equal(byCert.status, 200, "simpleenroll authenticated by a valid certificate of the same identity");

  const noCert = await post("simplereenroll", "second", "nocert.json", "");
  t.equal(noCert.status, 401, "simplereenroll without a certificate");

  const serialHex = (await serial("renewer.crt")).replace(/^serial=/, "").toLowerCase();
  await admin.call("POST", `/v1/certificates/${serialHex}/revoke`, { reason: "keyCompromise" });
  const revoked = await post("simplereenroll", "second", "revoked.json", mtls);
  // The admin listener refuses a revoked certificate at the handshake, as every listener does.
  t.equal(revoked.status, 0, "no HTTP answer: the handshake is refused");
  t.not(revoked.curlExit, 0, "curl fails");
  t.equal(revoked.body, "", "and gets no certificate");
});

t.test("csrattrs: the profile's key types and SAN form, as DER openssl parses", async (t) => {
  const parsed = await ok(t, `curl -s --cacert "$CA" "$EST/csrattrs" | base64 -d | openssl asn1parse -inform DER`);
  for (const name of ["id-ecPublicKey", "prime256v1", "secp384r1", "rsaEncryption", "ED25519", "X509v3 Subject Alternative Name"]) t.match(parsed, name);
  t.match(parsed, /INTEGER\s+:0800/, "RSA at least 2048 bits");
  const adminProfile = await ok(t, `curl -s --cacert "$CA" "$EST/admin/csrattrs" | base64 -d | openssl asn1parse -inform DER`);
  t.match(adminProfile, "id-ecPublicKey");
});

t.test("serverkeygen is refused where the profile does not allow it, and the token stays usable", async (t) => {
  const tok = await token(id("keyless"));
  await csr(t, "keyless", "/CN=keyless");
  const refused = await post("serverkeygen", "keyless", "keyless.json", `-u "x:${tok}"`);
  t.equal(refused.status, 403);
  t.match(JSON.parse(refused.body), { code: "forbidden" });
  t.equal((await post("simpleenroll", "keyless", "keyless.p7", `-u "x:${tok}"`)).status, 200);
});

t.test("serverkeygen where the profile allows it: multipart with the PKCS#8 key and the certificate, of the CSR's key type", async (t) => {
  const tok = await token("spiffe://postern.local/device/sensor-1", "devices");
  await ok(t, `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout throwaway.key -subj /CN=sensor-1 -outform DER | base64 > sensor.b64`);
  const answer = await post("devices/serverkeygen", "sensor", "sensor.multipart", `-u "x:${tok}"`);
  t.equal(answer.status, 200, "generated");
  t.match(answer.headers, /content-type: multipart\/mixed; boundary=/i);
  await ok(t, `tr -d '\r' < sensor.multipart | awk '/^--/{n++; body=0; next} body{print > ("part" n ".b64")} /^$/{body=1}'`);
  await ok(t, `base64 -d part1.b64 | openssl pkey -inform DER -out sensor.key`);
  await ok(t, `base64 -d part2.b64 | openssl pkcs7 -inform DER -print_certs -out sensor.crt`);
  t.match(await ok(t, `grep -i '^content-type' sensor.multipart`), /application\/pkcs8[\s\S]*application\/pkcs7-mime; smime-type=certs-only/);
  t.match(await ok(t, `openssl pkey -in sensor.key -noout -text | head -1`), /384 bit/, "the CSR's key type, P-384");
  t.match(await ok(t, `openssl x509 -in sensor.crt -noout -pubkey | openssl md5; openssl pkey -in sensor.key -pubout | openssl md5`), /^(.+)\n\1\n$/, "the certificate is for the key sent");
  t.notMatch(await ok(t, `openssl x509 -in sensor.crt -noout -pubkey | openssl md5; openssl pkey -in throwaway.key -pubout | openssl md5`), /^(.+)\n\1\n$/, "not for the CSR's key");
  await ok(t, `curl -s --cacert "$CA" "$EST/cacerts" | base64 -d | openssl pkcs7 -inform DER -print_certs -out cacerts.pem`);
  t.match(await ok(t, `openssl verify -CAfile cacerts.pem sensor.crt`), /OK/);
  t.match(await ok(t, `openssl x509 -in sensor.crt -noout -ext subjectAltName`), "URI:spiffe://postern.local/device/sensor-1");
  t.equal((await post("devices/serverkeygen", "sensor", "again.json", `-u "x:${tok}"`)).status, 401, "the token is spent");

  const edTok = await token("spiffe://postern.local/device/sensor-2", "devices");
  await ok(t, `openssl req -new -newkey ed25519 -nodes -keyout ed.key -subj /CN=sensor-2 -outform DER | base64 > ed.b64`);
  const ed = await post("devices/serverkeygen", "ed", "ed.json", `-u "x:${edTok}"`);
  t.equal(ed.status, 400, "a key type the profile does not allow");
  t.match(JSON.parse(ed.body), { code: "csr-weak-key" });
});

t.test("metrics by operation and outcome; audit lines say via est", async (t) => {
  const metrics = await (await fetch(`${gw.publicUrl}/metrics`)).text();
  t.match(metrics, /postern_est_requests_total\{operation="cacerts",outcome="ok"\} [1-9]/);
  t.match(metrics, /postern_est_requests_total\{operation="simpleenroll",outcome="ok"\} [1-9]/);
  t.match(metrics, /postern_est_requests_total\{operation="simpleenroll",outcome="token-invalid"\} 1/);
  t.match(metrics, /postern_est_requests_total\{operation="simpleenroll",outcome="csr-forbidden-name"\} 1/);
  t.match(metrics, /postern_est_requests_total\{operation="simplereenroll",outcome="ok"\} 1/);
  t.match(metrics, /postern_est_requests_total\{operation="serverkeygen",outcome="ok"\} 1/);
  t.match(metrics, /postern_est_requests_total\{operation="serverkeygen",outcome="forbidden"\} 1/);
  const audit = (await readFile(join(gw.dir, "data", "audit.jsonl"), "utf8")).split("\n").filter(Boolean).map((l) => JSON.parse(l) as { action: string; details: { via?: string } });
  const est = audit.filter((e) => e.details.via === "est").map((e) => e.action);
  t.ok(est.includes("certificate.enroll"), "enrollments");
  t.ok(est.includes("certificate.enroll.refused"), "refusals");
  t.ok(est.includes("certificate.renew"), "renewals");
  await writeFile(join(work, "done"), "");
});

t.test("EST shares the admin listener's limits with all enrollment: past one address's handshake burst, curl gets no answer", async (t) => {
  const limited = await startGateway({ tls: { handshakesPerSecondPerAddress: 0.01, handshakeBurstPerAddress: 3 } });
  t.teardown(() => limited.stop());
  const codes: string[] = [];
  for (let i = 0; i < 5; i++) {
    codes.push((await runTool("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", limited.caBundle, `${limited.adminUrl}/.well-known/est/cacerts`])).stdout);
  }
  t.same(codes, ["200", "200", "200", "000", "000"], "three handshakes, then refused before any request");
  const metrics = await (await fetch(`${limited.publicUrl}/metrics`)).text();
  t.match(metrics, /postern_tls_handshake_failures_total\{reason="rate_limited"\} 2/);
});
