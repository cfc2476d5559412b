import t, { type Test } from "tap";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDurationSeconds } from "../../src/cli/duration-flag.js";
import { UsageError } from "../../src/cli/usage.js";
import { ensurePki } from "../../src/pki/ca/bootstrap.js";
import { SigningKeyRing } from "../../src/pki/signing-keys/signing-keys.js";
import { finished, spawnTs } from "../helpers/process.js";

t.setTimeout(120_000);

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "postern-cli-keys-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs `postern keys ...`; an empty POSTERN_CA_PASSPHRASE counts as unset, so the file is used. */
function keys(args: string[], env: Record<string, string> = { POSTERN_CA_PASSPHRASE: "" }) {
  return finished(spawnTs("src/cli/main.ts", ["keys", ...args], { env }));
}

t.test("durations: s, m, h, d; anything else is a usage error", async (t) => {
  t.equal(parseDurationSeconds("30s", "--overlap"), 30);
  t.equal(parseDurationSeconds("15m", "--overlap"), 900);
  t.equal(parseDurationSeconds("12h", "--overlap"), 43_200);
  t.equal(parseDurationSeconds("7d", "--overlap"), 604_800);
  t.equal(parseDurationSeconds("0s", "--overlap"), 0);
  for (const bad of ["7 days", "1w", "-1d", "1.5h", "", "d", "10000000000s"]) {
    t.throws(() => parseDurationSeconds(bad, "--overlap"), UsageError, JSON.stringify(bad));
  }
});

t.test("keys rotate then keys list", async (t) => {
  const dir = await tempDir(t);
  await ensurePki({ dir, hostnames: [], env: {} });
  const passphrase = (await readFile(join(dir, "ca-passphrase"), "utf8")).trim();
  const oldKid = (await SigningKeyRing.open({ pkiDir: dir, passphrase })).active().keyid;

  const rotated = await keys(["rotate", "--pki-dir", dir, "--overlap", "12h"]);
  t.equal(rotated.code, 0, rotated.stderr);
  const newKid = /new active key ([A-Za-z0-9_-]{43})/.exec(rotated.stdout)?.[1];
  t.ok(newKid, rotated.stdout);
  t.not(newKid, oldKid);
  t.match(rotated.stdout, `retired ${oldKid}`);
  t.match(rotated.stdout, /SIGHUP/);
  const ring = JSON.parse(await readFile(join(dir, "signing-keys", "ring.json"), "utf8")) as {
    active: string;
    keys: Array<{ kid: string; retiredAtMs?: number; publishUntilMs?: number }>;
  };
  t.equal(ring.active, newKid);
  const retired = ring.keys.find((k) => k.kid === oldKid);
  t.equal((retired?.publishUntilMs ?? 0) - (retired?.retiredAtMs ?? 0), 12 * 3_600_000);

  const listed = await keys(["list", "--pki-dir", dir]);
  t.equal(listed.code, 0, listed.stderr);
  const lines = listed.stdout.trim().split("\n");
  t.equal(lines.length, 3, listed.stdout);
  t.match(lines[1], new RegExp(`^${newKid}\\s+active\\s`));
  t.match(lines[2], new RegExp(`^${oldKid}\\s+published until \\d{4}-`));
});

t.test("the passphrase may come from POSTERN_CA_PASSPHRASE", async (t) => {
  const dir = await tempDir(t);
  const env = { POSTERN_CA_PASSPHRASE: "an environment passphrase" };
  await ensurePki({ dir, hostnames: [], env });
  const kid = (await SigningKeyRing.open({ pkiDir: dir, passphrase: env.POSTERN_CA_PASSPHRASE })).active().keyid;
  const listed = await keys(["list", "--pki-dir", dir], env);
  t.equal(listed.code, 0, listed.stderr);
  t.match(listed.stdout, new RegExp(`${kid}\\s+active`));
  const wrong = await keys(["list", "--pki-dir", dir], { POSTERN_CA_PASSPHRASE: "not the passphrase" });
  t.equal(wrong.code, 1);
  t.notMatch(wrong.stderr, /not the passphrase/, "the passphrase is never echoed");
});

t.test("bad command lines exit 2, a directory without a CA exits 1", async (t) => {
  const dir = await tempDir(t);
  await ensurePki({ dir, hostnames: [], env: {} });
  for (const args of [
    ["rotate", "--pki-dir", dir, "--overlap", "7 days"],
    ["rotate", "--pki-dir", dir, "--overlap", "1w"],
    ["list", "--pki-dir", dir, "--overlap", "1d"],
    ["rotate", "--pki-dir", dir, "--bogus"],
    ["shuffle", "--pki-dir", dir],
    [],
  ]) {
    const result = await keys(args);
    t.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
  }
  const badOverlap = await keys(["rotate", "--pki-dir", dir, "--overlap", "7 days"]);
  t.match(badOverlap.stderr, /--overlap/);
  const noCa = await keys(["list", "--pki-dir", join(dir, "nothing-here")]);
  t.equal(noCa.code, 1, noCa.stderr);
});
