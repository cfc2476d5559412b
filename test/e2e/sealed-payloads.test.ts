/**
 * Sealed payloads end to end: an independent JOSE implementation (Debian's python3-jwcrypto)
 * seals to the key the gateway publishes, an independent RFC 9421 signer (python3-cryptography,
 * the signature base written from the RFC) signs, curl sends over mTLS; the gateway checks the
 * JWE header without decrypting; postern/consumer and `postern verify --decrypt` open it.
 * Postern's client seals and jwcrypto opens. Moved, re-signed, unknown-key and wrong-algorithm
 * bodies are refused; rotation keeps the previous key working for its overlap; neither the
 * stream nor the file nor any gateway file holds the plaintext or a backend private key.
 */
import { createHash, randomBytes, X509Certificate } from "node:crypto";
import { copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t, { type Test } from "tap";
import { parseConfig } from "../../src/config/load.js";
import { fieldsOf, loadBackendPrivateKeys, loadJwks, openSealedEntry, verifyStreamEntry, type StreamEntryFields } from "../../src/consumer/index.js";
import { startGateway, TEST_REDIS_URL, type TestGateway } from "../helpers/gateway.js";
import { finished, ROOT, runTool, spawnTs } from "../helpers/process.js";
import { useTestRedis } from "../helpers/redis.js";

// Several gateways, CLI runs and Python processes: generous on a loaded machine.
t.setTimeout(600_000);

const PYTHON = "/usr/bin/python3";
const TOOL = join(ROOT, "test/fixtures/sealed/jose_tool.py");

const hasJwcrypto = (await runTool(PYTHON, ["-c", "import jwcrypto, cryptography"])).code === 0;
if (!hasJwcrypto) t.comment("SKIPPED: python3-jwcrypto is not installed (Debian package python3-jwcrypto; .ci/run installs it)");

/** Runs the independent tool; fails the test with its stderr when it fails. */
async function py(...args: string[]): Promise<string> {
  const out = await runTool(PYTHON, [TOOL, ...args]);
  if (out.code !== 0) throw new Error(`jose_tool.py ${args[0]} failed: ${out.stderr}`);
  return out.stdout;
}

/** `postern keys backend ...` as a user runs it, in `cwd` (no configuration there: the defaults). */
async function cli(cwd: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return finished(spawnTs("src/cli/main.ts", args, { cwd }));
}

interface Setup {
  gw: TestGateway;
  /** The consumer's side: the backend's key ring (private keys). */
  ring: string;
  /** The gateway's copy of the public jwks.json. */
  gatewayJwks: string;
  consumerDir: string;
  configFor: () => ReturnType<typeof parseConfig>;
}

const routes = [
  { name: "sealed", path: "/v1/sealed/:topic", backend: "vault", allow: { roles: ["client", "admin"] }, sealed: "required" },
  { name: "other", path: "/v1/other/:topic", backend: "vault", allow: { roles: ["client", "admin"] }, sealed: "required" },
  { name: "mixed", path: "/v1/mixed/:topic", backend: "vault", allow: { roles: ["client"] }, sealed: "allowed" },
];

async function setup(t: Test, extra: Record<string, unknown> = {}): Promise<Setup> {
  const consumerDir = await mkdtemp(join(tmpdir(), "postern-consumer-"));
  const gatewayKeys = await mkdtemp(join(tmpdir(), "postern-gateway-keys-"));
  t.teardown(() => Promise.all([rm(consumerDir, { recursive: true, force: true }), rm(gatewayKeys, { recursive: true, force: true })]).then(() => undefined));
  const ring = join(consumerDir, "backend-keys", "vault");
  const created = await cli(consumerDir, "keys", "backend", "create", "vault", "--dir", ring);
  t.equal(created.code, 0, created.stderr);
  const gatewayJwks = join(gatewayKeys, "vault.jwks.json");
  await copyFile(join(ring, "jwks.json"), gatewayJwks);
  const backends = { vault: { type: "stream", stream: "vault", sealing: { publicKeys: gatewayJwks } } };
  const gw = await startGateway({ backends, routes, ...extra });
  t.teardown(() => gw.stop());
  const configFor = () =>
    parseConfig({
      listeners: { data: { host: "127.0.0.1", port: 0 }, admin: { host: "127.0.0.1", port: 0 }, public: { host: "127.0.0.1", port: 0 } },
      backends,
      routes,
      ...extra,
      pki: { dir: gw.certs },
      data: { dir: join(gw.dir, "data") },
    });
  return { gw, ring, gatewayJwks, consumerDir, configFor };
}

function thumbprint(certPem: string): string {
  return createHash("sha256").update(new X509Certificate(certPem).raw).digest("base64url");
}

/** Signs `bodyFile` with the independent signer and posts it with curl over mTLS; status and parsed body. */
async function curlPost(gw: TestGateway, path: string, bodyFile: string, contentType: string, who = "demo-client"): Promise<{ status: number; body: Record<string, unknown> }> {
  const authority = new URL(gw.dataUrl).host;
  const cert = join(gw.certs, `${who}.crt`);
  const key = join(gw.certs, `${who}.key`);
  const headers = JSON.parse(await py("sign", key, cert, authority, path, contentType, bodyFile)) as Record<string, string>;
  const out = await runTool("curl", [
    "-sS", "-o", "-", "-w", "\n%{http_code}",
    "--cert", cert, "--key", key, "--cacert", gw.caBundle,
    "-H", `content-type: ${contentType}`,
    ...Object.entries(headers).flatMap(([name, value]) => ["-H", `${name}: ${value}`]),
    "--data-binary", `@${bodyFile}`,
    `${gw.dataUrl}${path}`,
  ]);
  const at = out.stdout.lastIndexOf("\n");
  return { status: Number(out.stdout.slice(at + 1)), body: JSON.parse(out.stdout.slice(0, at) || "{}") as Record<string, unknown> };
}

/** The embedded file's entries, as a consumer reads them. */
async function fileEntries(gw: TestGateway): Promise<Array<{ id: string; fields: StreamEntryFields }>> {
  const text = await readFile(join(gw.dir, "data", "vault.jsonl"), "utf8");
  return text.split("\n").filter((l) => l.trim() !== "").map((line) => {
    const entry = JSON.parse(line) as { id: string; bodyEncoding?: string; fields: Record<string, string> };
    const fields: Record<string, string | Buffer> = { ...entry.fields };
    if (entry.bodyEncoding === "base64") fields.body = Buffer.from(entry.fields.body!, "base64");
    return { id: entry.id, fields };
  });
}

/** Every regular file under `dir`, recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const s = await stat(path);
    if (s.isDirectory()) out.push(...(await filesUnder(path)));
    else if (s.isFile()) out.push(path);
  }
  return out;
}

t.test("jwcrypto seals to the published key, curl sends it signed over mTLS, the consumer opens it; moved or re-signed bodies are refused", { skip: !hasJwcrypto }, async (t) => {
  const { gw, ring, gatewayJwks, consumerDir } = await setup(t);
  const work = await mkdtemp(join(consumerDir, "work-"));
  const published = join(work, "published.json");
  const response = await fetch(`${gw.publicUrl}/.well-known/postern-backend-keys/vault`);
  t.equal(response.status, 200);
  t.match(response.headers.get("content-type"), /application\/jwk-set\+json/);
  const jwks = (await response.json()) as { keys: Array<Record<string, string>> };
  t.equal(jwks.keys.length, 1);
  t.match(jwks.keys[0], { kty: "OKP", crv: "X25519", use: "enc", alg: "ECDH-ES+A256KW", kid: /^[A-Za-z0-9_-]{43}$/ });
  t.notOk("d" in jwks.keys[0]!, "no private member is published");
  t.equal((await fetch(`${gw.publicUrl}/.well-known/postern-backend-keys/messages`)).status, 404, "a backend without sealing has no keys");
  await writeFile(published, JSON.stringify(jwks));

  const marker = `diagnosis-${randomBytes(8).toString("hex")}`;
  const plaintext = join(work, "plain.json");
  await writeFile(plaintext, JSON.stringify({ patient: "p-17", diagnosis: marker }));
  const demo = thumbprint(await readFile(join(gw.certs, "demo-client.crt"), "utf8"));
  const sealedFile = join(work, "sealed.jwe");
  await writeFile(sealedFile, (await py("seal", published, "POST /v1/sealed/orders", demo, plaintext)).trim());

  const accepted = await curlPost(gw, "/v1/sealed/orders", sealedFile, "application/jose");
  t.equal(accepted.status, 202, JSON.stringify(accepted.body));

  // The consumer: the gateway's signature first, then the seal.
  const keys = await loadJwks(`${gw.publicUrl}/.well-known/postern-keys`);
  const [entry] = await fileEntries(gw);
  const verdict = verifyStreamEntry(entry!.fields, { keys });
  t.ok(verdict.ok, "the entry verifies");
  if (!verdict.ok) return;
  t.equal(verdict.contentType, "application/jose");
  const opened = await openSealedEntry(verdict, await loadBackendPrivateKeys(ring));
  t.ok(opened.ok, JSON.stringify(opened));
  if (opened.ok) {
    t.same(JSON.parse(opened.plaintext.toString()), { patient: "p-17", diagnosis: marker }, "postern/consumer decrypts what jwcrypto sealed");
    t.equal(opened.contentType, "application/json");
  }
  // A body that passed the gateway but is presented as another request's does not open.
  const moved = await openSealedEntry({ ...verdict, path: "/v1/other/orders" }, await loadBackendPrivateKeys(ring));
  t.match(moved, { ok: false, code: "sealed-binding" });
  const otherSender = await openSealedEntry({ ...verdict, clientCertSha256: "A".repeat(43) }, await loadBackendPrivateKeys(ring));
  t.match(otherSender, { ok: false, code: "sealed-binding" });

  // The CLI does the same, with the ring directory or a single PEM key.
  const out = join(work, "opened.json");
  const cliOpen = await finished(spawnTs("src/cli/main.ts", [
    "verify", "--jwks", `${gw.publicUrl}/.well-known/postern-keys`, "--entry", join(gw.dir, "data", "vault.jsonl"), "--decrypt", "--key", ring, "--out", out,
  ]));
  t.equal(cliOpen.code, 0, cliOpen.stdout + cliOpen.stderr);
  t.match(cliOpen.stdout, /^OK message .*\nOPENED sealed to key [A-Za-z0-9_-]{43} \(ECDH-ES\+A256KW, \d+ bytes, application\/json\)\n$/);
  t.equal(await readFile(out, "utf8"), await readFile(plaintext, "utf8"));
  const activeKid = (JSON.parse(await readFile(join(ring, "ring.json"), "utf8")) as { active: string }).active;
  const withPem = await finished(spawnTs("src/cli/main.ts", [
    "verify", "--jwks", `${gw.publicUrl}/.well-known/postern-keys`, "--entry", join(gw.dir, "data", "vault.jsonl"), "--decrypt", "--key", join(ring, `${activeKid}.key`),
  ]));
  t.equal(withPem.code, 0, withPem.stderr);
  t.ok(withPem.stdout.endsWith(await readFile(plaintext, "utf8")), "the plaintext follows the OK lines");
  const noKey = await finished(spawnTs("src/cli/main.ts", ["verify", "--jwks", `${gw.publicUrl}/.well-known/postern-keys`, "--entry", join(gw.dir, "data", "vault.jsonl"), "--decrypt"]));
  t.equal(noKey.code, 2, "--decrypt without --key is a usage error");

  // Moved to another route of the same backend (re-signed for it by the same client): refused at the gateway.
  const movedRoute = await curlPost(gw, "/v1/other/orders", sealedFile, "application/jose");
  t.equal(movedRoute.status, 400);
  t.equal(movedRoute.body.code, "sealed-binding");
  // Re-signed by another client for the same route: refused.
  const resigned = await curlPost(gw, "/v1/sealed/orders", sealedFile, "application/jose", "admin");
  t.equal(resigned.status, 400);
  t.equal(resigned.body.code, "sealed-binding");

  // Plaintext on a required route: refused with its own code; on an allowed route: accepted.
  const publicBody = join(work, "public.json");
  await writeFile(publicBody, '{"weather":"fine"}');
  const plainRefused = await curlPost(gw, "/v1/sealed/orders", publicBody, "application/json");
  t.equal(plainRefused.status, 415);
  t.equal(plainRefused.body.code, "sealed-required");
  const mixedPlain = await curlPost(gw, "/v1/mixed/orders", publicBody, "application/json");
  t.equal(mixedPlain.status, 202, "plaintext passes on an allowed route");
  const mixedSealedFile = join(work, "mixed.jwe");
  await writeFile(mixedSealedFile, (await py("seal", published, "POST /v1/mixed/orders", demo, plaintext)).trim());
  t.equal((await curlPost(gw, "/v1/mixed/orders", mixedSealedFile, "application/jose")).status, 202, "a sealed body passes on an allowed route");

  // A key that is not the backend's, and algorithms outside the profile: refused at the gateway.
  const stranger = join(consumerDir, "stranger");
  t.equal((await cli(consumerDir, "keys", "backend", "create", "vault", "--dir", stranger)).code, 0);
  const foreign = join(work, "foreign.jwe");
  await writeFile(foreign, (await py("seal", join(stranger, "jwks.json"), "POST /v1/sealed/orders", demo, plaintext)).trim());
  const unknownKid = await curlPost(gw, "/v1/sealed/orders", foreign, "application/jose");
  t.equal(unknownKid.status, 400);
  t.equal(unknownKid.body.code, "sealed-key-unknown");
  for (const [flag, value] of [["--alg", "ECDH-ES+A128KW"], ["--enc", "A128GCM"]] as const) {
    const file = join(work, `bad-${value}.jwe`);
    await writeFile(file, (await py("seal", published, "POST /v1/sealed/orders", demo, plaintext, flag, value)).trim());
    const refused = await curlPost(gw, "/v1/sealed/orders", file, "application/jose");
    t.equal(refused.status, 400, `${flag} ${value}`);
    t.equal(refused.body.code, "sealed-invalid", `${flag} ${value} is refused as sealed-invalid`);
  }
  await writeFile(join(work, "garbage.jwe"), "not.a.jwe");
  t.equal((await curlPost(gw, "/v1/sealed/orders", join(work, "garbage.jwe"), "application/jose")).body.code, "sealed-invalid");

  // Exactly the two sealed messages and the one plaintext on the allowed route were stored.
  const entries = await fileEntries(gw);
  t.equal(entries.length, 3);

  // Neither the message file nor any other file the gateway wrote holds the sealed plaintext,
  // and no gateway file (its directories and the configured public-key file) holds a backend private key.
  const gatewayFiles = [...(await filesUnder(gw.dir)).filter((f) => !f.startsWith(consumerDir)), gatewayJwks];
  const sealedEntryIds = entries.filter((e) => String(e.fields["content-type"]) === "application/jose").map((e) => e.id);
  t.equal(sealedEntryIds.length, 2);
  const privatePems = await Promise.all((await readdir(ring)).filter((n) => n.endsWith(".key")).map((n) => readFile(join(ring, n), "utf8")));
  const privateBodies = privatePems.map((pem) => pem.split("\n").filter((l) => l && !l.startsWith("-----")).join(""));
  const privateD = (await loadBackendPrivateKeys(ring)).values().next().value!.key.export({ format: "jwk" }).d!;
  const plaintextBase64 = (await readFile(plaintext)).toString("base64");
  for (const file of gatewayFiles) {
    const bytes = await readFile(file);
    const text = bytes.toString("latin1");
    for (const body of privateBodies) t.notOk(text.includes(body), `${file} holds no backend private key`);
    t.notOk(text.includes(privateD), `${file} holds no backend private key (JWK d)`);
    t.notOk(text.includes(marker) || text.includes(plaintextBase64), `${file} holds no plaintext of the sealed messages, in the clear or base64`);
  }
  const gatewayJwksDoc = JSON.parse(await readFile(gatewayJwks, "utf8")) as { keys: Array<Record<string, unknown>> };
  t.notOk(gatewayJwksDoc.keys.some((k) => "d" in k), "the gateway's key file is public keys only");
});

t.test("Postern's client seals, jwcrypto opens with the consumer's key; the Redis stream never holds the plaintext", { skip: !hasJwcrypto }, async (t) => {
  const { keyPrefix, redis } = await useTestRedis(t);
  const { gw, ring, consumerDir } = await setup(t, { redis: { url: TEST_REDIS_URL, keyPrefix } });
  const client = await gw.client();
  const marker = `card-${randomBytes(8).toString("hex")}`;
  const plaintext = JSON.stringify({ card: marker, amount: 12 });
  const sent = await client.send("/v1/sealed/payments", plaintext, "application/json", { seal: `${gw.publicUrl}/.well-known/postern-backend-keys/vault` });
  t.equal(sent.status, 202);
  const stream = `${keyPrefix}{vault}:vault`;
  const entries = (await redis.xrangeBuffer(stream, "-", "+")) as Array<[Buffer, Buffer[]]>;
  t.equal(entries.length, 1);
  const flat = entries[0]![1];
  for (const value of flat) t.notOk(value.toString("latin1").includes(marker), "no stream field holds the plaintext");
  const fields = fieldsOf(flat);
  t.equal(String(fields["content-type"]), "application/jose");
  const jweFile = join(consumerDir, "from-stream.jwe");
  await writeFile(jweFile, fields.body!);
  const activeKid = (JSON.parse(await readFile(join(ring, "ring.json"), "utf8")) as { active: string }).active;
  t.equal(await py("open", join(ring, `${activeKid}.key`), jweFile), plaintext, "jwcrypto decrypts what Postern's client sealed");

  const keys = await loadJwks(`${gw.publicUrl}/.well-known/postern-keys`);
  const verdict = verifyStreamEntry(fields, { keys });
  t.ok(verdict.ok);
  if (verdict.ok) {
    const opened = await openSealedEntry(verdict, await loadBackendPrivateKeys(ring));
    t.ok(opened.ok && opened.plaintext.toString() === plaintext, "and so does postern/consumer");
  }
  // The gateway's header check refuses what its own client would never send: a body sealed for another sender.
  const admin = await gw.client("admin");
  const adminCopy = admin.prepare("/v1/sealed/payments", fields.body!, "application/jose");
  const refused = await admin.dispatch(adminCopy);
  t.equal(refused.status, 400);
  t.equal((refused.body as { code: string }).code, "sealed-binding");
});

t.test("rotation: bodies sealed to the previous key pass and decrypt during the overlap; after it, the gateway refuses them and the client fetches again", async (t) => {
  const { gw, ring, gatewayJwks, consumerDir, configFor } = await setup(t);
  const keysUrl = `${gw.publicUrl}/.well-known/postern-backend-keys/vault`;
  const client = await gw.client();
  const oldKeys = await client.sealingKeys(keysUrl);
  const oldKid = oldKeys.keys[0]!.kid;

  const rotated = await cli(consumerDir, "keys", "backend", "rotate", "vault", "--dir", ring, "--overlap", "1h");
  t.equal(rotated.code, 0, rotated.stderr);
  t.match(rotated.stdout, new RegExp(`retired ${oldKid}, current until `));
  await copyFile(join(ring, "jwks.json"), gatewayJwks);
  await gw.app.reload(configFor());
  const published = (await (await fetch(keysUrl)).json()) as { keys: Array<{ kid: string }> };
  t.equal(published.keys.length, 2, "both keys are published during the overlap");
  t.not(published.keys[0]!.kid, oldKid, "the new key first");
  t.equal(published.keys[1]!.kid, oldKid);

  // The client still holds the old keys (cached): its body is sealed to the previous key.
  const viaOld = await client.send("/v1/sealed/a", '{"n":1}', "application/json", { seal: keysUrl });
  t.equal(viaOld.status, 202, "sealed to the previous key: accepted during the overlap");
  const fresh = await gw.client("demo-client", { sealKeysMaxAgeSeconds: 0 });
  t.equal((await fresh.send("/v1/sealed/b", '{"n":2}', "application/json", { seal: keysUrl })).status, 202);

  const keys = await loadJwks(`${gw.publicUrl}/.well-known/postern-keys`);
  const privateKeys = await loadBackendPrivateKeys(ring);
  const opened = [];
  for (const { fields } of await fileEntries(gw)) {
    const verdict = verifyStreamEntry(fields, { keys });
    if (!verdict.ok) t.fail(verdict.code);
    else opened.push(await openSealedEntry(verdict, privateKeys));
  }
  t.same(opened.map((o) => o.ok && [o.kid === oldKid, o.plaintext.toString()]), [[true, '{"n":1}'], [false, '{"n":2}']], "each decrypts with its own key");

  // Rotate again with no overlap: the key of the second message stops being current at once.
  const secondKid = published.keys[0]!.kid;
  t.equal((await cli(consumerDir, "keys", "backend", "rotate", "vault", "--dir", ring, "--overlap", "0s")).code, 0);
  await copyFile(join(ring, "jwks.json"), gatewayJwks);
  await gw.app.reload(configFor());
  // A client that fetched the keys before this rotation still seals to the second key.
  const stalePath = join(consumerDir, "stale.json");
  await writeFile(stalePath, JSON.stringify({ keys: [published.keys[0]] }));
  const staleMessage = await fresh.prepareSealed("/v1/sealed/d", '{"n":4}', "application/json", stalePath);
  t.equal((JSON.parse(Buffer.from(staleMessage.body.toString().split(".")[0]!, "base64url").toString()) as { kid: string }).kid, secondKid);
  const refused = await fresh.dispatch(staleMessage);
  t.equal(refused.status, 400, "a key retired without overlap is refused at the gateway");
  t.equal((refused.body as { code: string }).code, "sealed-key-unknown");
  // The client's send fetches the keys again once on sealed-key-unknown and seals to the new key.
  const stalePrimed = await gw.client("demo-client");
  await stalePrimed.sealingKeys(keysUrl);
  t.equal((await cli(consumerDir, "keys", "backend", "rotate", "vault", "--dir", ring, "--overlap", "0s")).code, 0);
  await copyFile(join(ring, "jwks.json"), gatewayJwks);
  await gw.app.reload(configFor());
  const recovered = await stalePrimed.send("/v1/sealed/e", '{"n":5}', "application/json", { seal: keysUrl });
  t.equal(recovered.status, 202, "the client recovers from a rotation by fetching the keys again");
  const left = (await readdir(ring)).filter((n) => n.endsWith(".key")).sort();
  t.equal(left.length, 2, "keys retired without overlap are pruned from the ring");
  t.ok(left.includes(`${oldKid}.key`), "the key still within its overlap stays");
});

t.test("the gateway holds public keys only: a key file with a private member, or inside pki.dir, is refused", async (t) => {
  const consumerDir = await mkdtemp(join(tmpdir(), "postern-consumer-"));
  t.teardown(() => rm(consumerDir, { recursive: true, force: true }));
  const ring = join(consumerDir, "ring");
  t.equal((await cli(consumerDir, "keys", "backend", "create", "vault", "--dir", ring, "--curve", "P-256", "--alg", "ECDH-ES")).code, 0);
  const [pk] = (await loadBackendPrivateKeys(ring)).values();
  const leaked = join(consumerDir, "leaked.json");
  const publicDoc = JSON.parse(await readFile(join(ring, "jwks.json"), "utf8")) as { keys: Array<Record<string, unknown>> };
  t.match(publicDoc.keys[0], { kty: "EC", crv: "P-256", alg: "ECDH-ES", use: "enc" });
  await writeFile(leaked, JSON.stringify({ keys: [{ ...publicDoc.keys[0], d: pk!.key.export({ format: "jwk" }).d }] }));
  await t.rejects(
    startGateway({ backends: { vault: { type: "stream", sealing: { publicKeys: leaked } } }, routes }),
    /backends\.vault\.sealing\.publicKeys .*private key/,
  );
  t.throws(
    () => parseConfig({ pki: { dir: consumerDir }, backends: { vault: { type: "stream", sealing: { publicKeys: join(consumerDir, "ring", "jwks.json") } } }, routes }),
    /backends\.vault\.sealing\.publicKeys.*inside pki\.dir/,
  );
  t.throws(() => parseConfig({ backends: { vault: { type: "stream" } }, routes }), /routes\.0\.sealed.*sealing\.publicKeys/, "a sealed route needs a backend with keys");
  const inside = await cli(consumerDir, "keys", "backend", "create", "vault", "--dir", join(consumerDir, "certs", "vault"));
  t.equal(inside.code, 2, "the CLI refuses to write a backend's private keys into the gateway's PKI directory");
  t.match(inside.stderr, /inside pki\.dir/);
});
