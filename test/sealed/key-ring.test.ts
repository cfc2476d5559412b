import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import {
  createBackendKeyRing,
  loadBackendPrivateKeys,
  openSealed,
  parseSealingJwks,
  readBackendKeyRing,
  rotateBackendKeyRing,
  sealPayload,
} from "../../src/sealed/index.js";

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "postern-backend-ring-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test("create: one active key, its private key 0600, jwks.json public only; a second create is a conflict", async (t) => {
  const dir = join(await tempDir(t), "ring");
  const state = await createBackendKeyRing(dir, { backend: "vault", alg: "ECDH-ES+A256KW", crv: "X25519" });
  t.equal(state.keys.length, 1);
  t.equal((await stat(join(dir, `${state.active}.key`))).mode & 0o777, 0o600);
  t.equal((await stat(dir)).mode & 0o777, 0o700);
  const jwks = JSON.parse(await readFile(join(dir, "jwks.json"), "utf8"));
  t.same(parseSealingJwks(jwks).keys.map((k) => k.kid), [state.active]);
  t.notOk(JSON.stringify(jwks).includes('"d"'));
  await t.rejects(createBackendKeyRing(dir, { backend: "vault", alg: "ECDH-ES", crv: "P-256" }), { code: "conflict" });
  await t.rejects(readBackendKeyRing(join(dir, "..", "none")), { code: "not-found" });
});

t.test("rotate: the retired key stays published and decrypts through its overlap, then is pruned", async (t) => {
  const dir = await tempDir(t);
  let now = Date.parse("2026-06-01T00:00:00Z");
  const first = await createBackendKeyRing(dir, { backend: "vault", alg: "ECDH-ES", crv: "P-256", now: () => now });
  const binding = { route: "POST /v1/x", sender: "S".repeat(43) };
  const oldSet = parseSealingJwks(JSON.parse(await readFile(join(dir, "jwks.json"), "utf8")));
  const sealedToOld = await sealPayload(Buffer.from("old"), oldSet, binding);

  now += 1000;
  const rotated = await rotateBackendKeyRing(dir, { overlapSeconds: 3600, now: () => now });
  t.equal(rotated.retiredKid, first.active);
  t.equal(rotated.retiredPublishUntilMs, now + 3_600_000);
  const published = JSON.parse(await readFile(join(dir, "jwks.json"), "utf8"));
  t.same(published.keys.map((k: { kid: string }) => k.kid), [rotated.state.active, first.active], "the new key first, the old one still there");
  t.same(published.publishUntil, { [first.active]: now + 3_600_000 });
  const keys = await loadBackendPrivateKeys(dir);
  t.same([...keys.keys()].sort(), [rotated.state.active, first.active].sort());
  const opened = await openSealed(Buffer.from(sealedToOld.jwe), keys, binding);
  t.ok(opened.ok && opened.plaintext.toString() === "old", "a body sealed to the previous key still opens");

  now += 3_600_000 + 1;
  const again = await rotateBackendKeyRing(dir, { now: () => now });
  t.same(again.prunedKids, [first.active], "past its overlap: pruned");
  t.notOk((await readdir(dir)).includes(`${first.active}.key`), "and its file is gone");
  t.match(await openSealed(Buffer.from(sealedToOld.jwe), await loadBackendPrivateKeys(dir), binding), { ok: false, code: "sealed-key-unknown" });
  await t.rejects(rotateBackendKeyRing(dir, { overlapSeconds: -1 }), { code: "bad-request" });
});

t.test("loadBackendPrivateKeys takes one PEM file too, and refuses what is not an X25519 or P-256 key", async (t) => {
  const dir = await tempDir(t);
  const state = await createBackendKeyRing(dir, { backend: "vault", alg: "ECDH-ES+A256KW", crv: "X25519" });
  const one = await loadBackendPrivateKeys(join(dir, `${state.active}.key`));
  t.same([...one.keys()], [state.active]);
  await t.rejects(loadBackendPrivateKeys(join(dir, "jwks.json")), { code: "bad-request" });
});
