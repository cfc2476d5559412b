import t, { type Test } from "tap";
import { readdir, readFile, mkdtemp, rm, stat, writeFile, copyFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseJwks } from "../../../src/consumer/jwks.js";
import { verifyStreamEntry } from "../../../src/consumer/verify-entry.js";
import { PosternError } from "../../../src/errors.js";
import { buildStreamEntry } from "../../../src/forward/stream-entry.js";
import type { AcceptedMessage } from "../../../src/forward/backend.js";
import { ensurePki } from "../../../src/pki/ca/bootstrap.js";
import { SigningKeyRing } from "../../../src/pki/signing-keys/signing-keys.js";
import { encryptPrivateKeyPem, generateKeyPairNow, jwkThumbprint } from "../../../src/pki/keys/keys.js";
import { createPublicKey } from "node:crypto";
import { createContentDigest } from "../../../src/signing/index.js";

t.setTimeout(120_000);

const PASSPHRASE = "correct horse battery staple";
const HOUR_S = 3_600;

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "postern-signing-keys-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function clock(startMs = Date.parse("2025-01-01T00:00:00Z")) {
  const c = { ms: startMs, now: () => c.ms, advanceSeconds: (s: number) => void (c.ms += s * 1000) };
  return c;
}

async function ringJson(dir: string): Promise<{ active: string; keys: Array<{ kid: string; publishUntilMs?: number }> }> {
  return JSON.parse(await readFile(join(dir, "signing-keys", "ring.json"), "utf8"));
}

function kidsOf(ring: SigningKeyRing): string[] {
  return ring.jwks().keys.map((k) => k.kid);
}

function message(receivedAtMs: number): AcceptedMessage {
  const body = Buffer.from('{"hello":"world"}');
  return {
    messageId: "msg-0001-abcdef",
    route: "orders",
    params: {},
    identity: { id: "spiffe://postern.local/client/demo", roles: ["client"], serial: "01", fingerprint: "x", notAfterMs: 0 },
    clientCertDer: Buffer.from("not-really-a-certificate"),
    method: "POST",
    authority: "gw.example:8443",
    path: "/v1/messages/orders",
    query: "",
    contentType: "application/json",
    contentDigest: createContentDigest(body),
    body,
    receivedAtMs,
  };
}

t.test("creates a first key when there is neither a ring nor a legacy key, and loads it again", async (t) => {
  const dir = await tempDir(t);
  const ring = await SigningKeyRing.open({ pkiDir: dir, passphrase: PASSPHRASE });
  const { keyid } = ring.active();
  t.match(keyid, /^[A-Za-z0-9_-]{43}$/);
  const state = await ringJson(dir);
  t.equal(state.active, keyid);
  t.match(state.keys, [{ kid: keyid, createdAtMs: Number }]);
  t.equal(state.keys.length, 1);
  t.match(await readFile(join(dir, "signing-keys", `${keyid}.key`), "utf8"), /BEGIN ENCRYPTED PRIVATE KEY/);
  t.same(kidsOf(ring), [keyid]);
  t.match(ring.jwks().keys[0], { kty: "OKP", crv: "Ed25519", use: "sig", alg: "EdDSA", kid: keyid });
  const again = await SigningKeyRing.open({ pkiDir: dir, passphrase: PASSPHRASE });
  t.equal(again.active().keyid, keyid);
  t.equal(again.active().key.asymmetricKeyType, "ed25519");
});

/** A single-key deployment from before the ring: `gateway-signing.key`, encrypted with the CA passphrase. */
async function writeLegacyKey(path: string, passphrase: string): Promise<string> {
  const key = generateKeyPairNow("Ed25519").privateKey;
  await writeFile(path, encryptPrivateKeyPem(key, passphrase), { mode: 0o600 });
  return jwkThumbprint(createPublicKey(key).export({ format: "jwk" }));
}

t.test("imports an older deployment's gateway-signing.key as the first key, keeping its kid", async (t) => {
  const dir = await tempDir(t);
  const kid = await writeLegacyKey(join(dir, "gateway-signing.key"), PASSPHRASE);
  const ring = await SigningKeyRing.open({ pkiDir: dir, passphrase: PASSPHRASE });
  t.equal(ring.active().keyid, kid);
  const reopened = await SigningKeyRing.open({ pkiDir: dir, passphrase: PASSPHRASE });
  t.equal(reopened.active().keyid, kid);

  const elsewhere = await tempDir(t);
  await copyFile(join(dir, "gateway-signing.key"), join(elsewhere, "old.key"));
  const explicit = await SigningKeyRing.open({ pkiDir: elsewhere, passphrase: PASSPHRASE, legacyKeyFile: join(elsewhere, "old.key") });
  t.equal(explicit.active().keyid, kid, "an explicit legacyKeyFile is imported too");
});

t.test("a new PKI has no legacy key: the ring makes its first key", async (t) => {
  const dir = await tempDir(t);
  await ensurePki({ dir, hostnames: [], env: {} });
  await t.rejects(stat(join(dir, "gateway-signing.key")), { code: "ENOENT" });
  const passphrase = (await readFile(join(dir, "ca-passphrase"), "utf8")).trim();
  const ring = await SigningKeyRing.open({ pkiDir: dir, passphrase });
  t.equal(ring.active().key.asymmetricKeyType, "ed25519");
});

t.test("a legacy key under another passphrase is refused, nothing is committed", async (t) => {
  const dir = await tempDir(t);
  await writeLegacyKey(join(dir, "gateway-signing.key"), PASSPHRASE);
  const error = await SigningKeyRing.open({ pkiDir: dir, passphrase: "not the passphrase" }).catch((e: unknown) => e);
  t.ok(error instanceof PosternError);
  t.equal((error as PosternError).code, "internal");
  await t.rejects(stat(join(dir, "signing-keys", "ring.json")), { code: "ENOENT" });
});

t.test("rotate publishes the old key until its overlap passes, then prunes it and its file", async (t) => {
  const dir = await tempDir(t);
  const c = clock();
  const ring = await SigningKeyRing.open({ pkiDir: dir, passphrase: PASSPHRASE, now: c.now });
  const first = ring.active().keyid;
  c.advanceSeconds(10);
  const rotated = await ring.rotate({ overlapSeconds: HOUR_S });
  const second = ring.active().keyid;
  t.not(second, first);
  t.same(rotated, { activeKid: second, retiredKid: first, retiredPublishUntilMs: c.ms + HOUR_S * 1000, prunedKids: [] });
  t.same(kidsOf(ring), [second, first], "active first, the retired key still published");
  t.match((await ringJson(dir)).keys.find((k) => k.kid === first), { publishUntilMs: c.ms + HOUR_S * 1000 });

  c.advanceSeconds(HOUR_S - 1);
  t.same(kidsOf(ring), [second, first], "still published one second before the overlap ends");
  c.advanceSeconds(1);
  t.same(kidsOf(ring), [second], "gone from the JWKS once the overlap ends");
  t.ok(await stat(join(dir, "signing-keys", `${first}.key`)), "its file stays until the next rotation");

  const next = await ring.rotate({ overlapSeconds: HOUR_S });
  t.same(next.prunedKids, [first]);
  t.same(kidsOf(ring), [next.activeKid, second]);
  t.same((await ringJson(dir)).keys.map((k) => k.kid), [next.activeKid, second]);
  await t.rejects(stat(join(dir, "signing-keys", `${first}.key`)), { code: "ENOENT" });
});

t.test("an overlap of 0 drops the old key at once; a negative overlap is refused", async (t) => {
  const dir = await tempDir(t);
  const c = clock();
  const ring = await SigningKeyRing.open({ pkiDir: dir, passphrase: PASSPHRASE, now: c.now });
  const first = ring.active().keyid;
  const result = await ring.rotate({ overlapSeconds: 0 });
  t.same(result.prunedKids, [first]);
  t.same(kidsOf(ring), [result.activeKid]);
  await t.rejects(stat(join(dir, "signing-keys", `${first}.key`)), { code: "ENOENT" });
  await t.rejects(ring.rotate({ overlapSeconds: -1 }), { code: "bad-request" });
  t.equal(ring.active().keyid, result.activeKid);
});

t.test("key files and ring.json are 0600 in a 0700 directory; the JWKS never holds a private member", async (t) => {
  const dir = await tempDir(t);
  const ring = await SigningKeyRing.open({ pkiDir: dir, passphrase: PASSPHRASE });
  await ring.rotate();
  await ring.rotate();
  const keyDir = join(dir, "signing-keys");
  t.equal((await stat(keyDir)).mode & 0o777, 0o700);
  const names = await readdir(keyDir);
  t.same(names.filter((n) => n.endsWith(".key")).length, 3);
  for (const name of names) t.equal((await stat(join(keyDir, name))).mode & 0o777, 0o600, name);
  const jwks = ring.jwks();
  t.equal(jwks.keys.length, 3);
  for (const key of jwks.keys) {
    t.notOk("d" in key, `${key.kid} has no d`);
    t.same(Object.keys(key).sort(), ["alg", "crv", "kid", "kty", "use", "x"]);
  }
  t.notOk(JSON.stringify(jwks).includes('"d"'));
  t.equal(parseJwks(JSON.parse(JSON.stringify(jwks))).size, 3, "a consumer accepts the document");
  jwks.keys[0]!.kid = "tampered";
  t.not(ring.jwks().keys[0]?.kid, "tampered", "callers get copies");
});

t.test("an entry signed before a rotation verifies against the JWKS until the overlap ends", async (t) => {
  const dir = await tempDir(t);
  const c = clock(Date.now());
  const ring = await SigningKeyRing.open({ pkiDir: dir, passphrase: PASSPHRASE, now: c.now });
  const oldEntry = Object.fromEntries(buildStreamEntry(message(c.ms), ring.active()));
  await ring.rotate({ overlapSeconds: HOUR_S });
  const newEntry = Object.fromEntries(buildStreamEntry(message(c.ms), ring.active()));
  const published = () => parseJwks(JSON.parse(JSON.stringify(ring.jwks())));
  const verify = (fields: typeof oldEntry) => verifyStreamEntry(fields, { keys: published(), now: c.now });
  t.match(verify(oldEntry), { ok: true, messageId: "msg-0001-abcdef" }, "the old key's entry verifies");
  t.match(verify(newEntry), { ok: true }, "the new key's entry verifies");
  c.advanceSeconds(HOUR_S + 1);
  t.match(verify(oldEntry), { ok: false }, "not once the old key is no longer published");
  t.match(verify(newEntry), { ok: true });
});

t.test("reload picks up another instance's rotation and reports whether the active key changed", async (t) => {
  const dir = await tempDir(t);
  const a = await SigningKeyRing.open({ pkiDir: dir, passphrase: PASSPHRASE });
  const b = await SigningKeyRing.open({ pkiDir: dir, passphrase: PASSPHRASE });
  const first = a.active().keyid;
  t.equal(b.active().keyid, first);
  const { activeKid } = await b.rotate();
  t.equal(a.active().keyid, first, "nothing changes before reload");
  t.equal(await a.reload(), true);
  t.equal(a.active().keyid, activeKid);
  t.same(kidsOf(a), [activeKid, first]);
  t.equal(await a.reload(), false, "a second reload changes nothing");
  const fromA = await a.rotate();
  t.equal(fromA.retiredKid, activeKid, "a rotation builds on the ring on disk");
  t.equal(await b.reload(), true);
  t.same(kidsOf(b), [fromA.activeKid, activeKid, first]);
});

t.test("replicas opening or rotating at the same time agree on one ring", async (t) => {
  const dir = await tempDir(t);
  const opened = await Promise.all([1, 2, 3].map(() => SigningKeyRing.open({ pkiDir: dir, passphrase: PASSPHRASE })));
  t.equal(new Set(opened.map((r) => r.active().keyid)).size, 1, "one first key");
  t.equal((await readdir(join(dir, "signing-keys"))).filter((n) => n.endsWith(".key")).length, 1);
  const results = await Promise.all(opened.map((r) => r.rotate()));
  const state = await ringJson(dir);
  t.equal(state.keys.length, 4, "three rotations, none lost");
  t.ok(results.some((r) => r.activeKid === state.active));
  t.equal((await readdir(join(dir, "signing-keys"))).filter((n) => n.endsWith(".key")).length, 4);
  for (const r of opened) await r.reload();
  t.same(opened.map((r) => r.active().keyid), [state.active, state.active, state.active]);
});

t.test("a damaged ring fails closed; a failed reload keeps the current keys", async (t) => {
  const dir = await tempDir(t);
  const ring = await SigningKeyRing.open({ pkiDir: dir, passphrase: PASSPHRASE });
  const kid = ring.active().keyid;
  const ringPath = join(dir, "signing-keys", "ring.json");
  const good = await readFile(ringPath, "utf8");

  await writeFile(ringPath, "{not json");
  await t.rejects(ring.reload(), { code: "internal" });
  t.equal(ring.active().keyid, kid);
  t.same(kidsOf(ring), [kid]);
  await t.rejects(SigningKeyRing.open({ pkiDir: dir, passphrase: PASSPHRASE }), { code: "internal" });

  await writeFile(ringPath, JSON.stringify({ active: "../../etc/passwd", keys: [{ kid: "../../etc/passwd", createdAtMs: 1 }] }));
  await t.rejects(ring.reload(), { code: "internal" }, "a kid that is no thumbprint is refused");

  const other = await SigningKeyRing.open({ pkiDir: await tempDir(t), passphrase: PASSPHRASE });
  const otherKid = other.active().keyid;
  await copyFile(join(other.dir, `${otherKid}.key`), join(dir, "signing-keys", `${kid}.key`));
  await writeFile(ringPath, good);
  await t.rejects(SigningKeyRing.open({ pkiDir: dir, passphrase: PASSPHRASE }), { code: "internal" }, "a file holding another key is refused");
  await t.rejects(SigningKeyRing.open({ pkiDir: dirname(other.dir), passphrase: "wrong passphrase" }), { code: "internal" });
});

t.test("leftovers of a crashed rotation leave the ring valid and are cleaned up by the next one", async (t) => {
  const dir = await tempDir(t);
  const ring = await SigningKeyRing.open({ pkiDir: dir, passphrase: PASSPHRASE });
  const kid = ring.active().keyid;
  const keyDir = join(dir, "signing-keys");
  const orphan = `${"A".repeat(43)}.key`;
  await writeFile(join(keyDir, orphan), "half a key", { mode: 0o600 });
  await writeFile(join(keyDir, ".ring.json.abcdef.tmp"), "{", { mode: 0o600 });
  const reopened = await SigningKeyRing.open({ pkiDir: dir, passphrase: PASSPHRASE });
  t.equal(reopened.active().keyid, kid);
  const { activeKid } = await reopened.rotate();
  t.same((await readdir(keyDir)).sort(), [`${activeKid}.key`, `${kid}.key`, "ring.json"].sort());
});

t.test("the ring may live outside the PKI directory (pki.signingKeysDir): the PKI directory is only read", async (t) => {
  const pkiDir = await tempDir(t);
  const kid = await writeLegacyKey(join(pkiDir, "gateway-signing.key"), PASSPHRASE);
  const before = (await readdir(pkiDir)).sort();
  const ringDir = join(await tempDir(t), "volume", "signing-keys");
  const ring = await SigningKeyRing.open({ pkiDir, dir: ringDir, passphrase: PASSPHRASE });
  t.equal(ring.dir, ringDir);
  t.equal(ring.active().keyid, kid, "an older PKI's key is still imported from the PKI directory");
  t.ok(await stat(join(ringDir, "ring.json")));
  const rotated = await ring.rotate();
  t.ok(await stat(join(ringDir, `${rotated.activeKid}.key`)));
  t.same((await readdir(pkiDir)).sort(), before, "nothing was added to the PKI directory");
  const again = await SigningKeyRing.open({ pkiDir, dir: ringDir, passphrase: PASSPHRASE });
  t.equal(again.active().keyid, rotated.activeKid);
});
