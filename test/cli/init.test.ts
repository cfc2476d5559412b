import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import t, { type Test } from "tap";
import { ensurePki } from "../../src/pki/ca/bootstrap.js";
import { finished, spawnTs } from "../helpers/process.js";

t.setTimeout(120_000);
const run = promisify(execFile);

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "postern-cli-init-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** `postern init ...` with POSTERN_CA_PASSPHRASE unset (empty counts as unset). */
const init = (args: string[], env: Record<string, string> = { POSTERN_CA_PASSPHRASE: "" }) =>
  finished(spawnTs("src/cli/main.ts", ["init", ...args], { env }));

const mode = async (path: string) => (await stat(path)).mode & 0o777;

t.test("init creates an encrypted two-level CA and says where the passphrase is", async (t) => {
  const dir = join(await tempDir(t), "certs");
  const result = await init(["--dir", dir]);
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, `Generated the CA passphrase in ${join(dir, "ca-passphrase")}`);
  t.match(result.stdout, /postern start issues the gateway's server certificate/);
  for (const key of ["root-ca.key", "issuing-ca.key"]) {
    t.equal(await mode(join(dir, key)), 0o600, `${key} is 0600`);
    t.match(await readFile(join(dir, key), "utf8"), /^-----BEGIN ENCRYPTED PRIVATE KEY-----/, `${key} is encrypted`);
  }
  t.equal(await mode(join(dir, "ca-passphrase")), 0o600);
  const { stdout } = await run("openssl", ["verify", "-CAfile", join(dir, "root-ca.crt"), join(dir, "issuing-ca.crt")]);
  t.match(stdout, /: OK/, "the issuing CA chains to the root");
  const root = new X509Certificate(await readFile(join(dir, "root-ca.crt")));
  t.equal(root.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1", "P-256 by default");
});

t.test("init refuses to replace a CA without --force, and replaces it with --force", async (t) => {
  const dir = await tempDir(t);
  t.equal((await init(["--dir", dir])).code, 0);
  const before = await readFile(join(dir, "root-ca.crt"), "utf8");
  const again = await init(["--dir", dir]);
  t.equal(again.code, 1);
  t.match(again.stderr, /a CA already exists in .*--force/);
  t.equal(await readFile(join(dir, "root-ca.crt"), "utf8"), before, "the CA is untouched");
  const forced = await init(["--dir", dir, "--force"]);
  t.equal(forced.code, 0, forced.stderr);
  t.not(await readFile(join(dir, "root-ca.crt"), "utf8"), before, "--force made a new root");
  t.notMatch(forced.stdout, /Generated the CA passphrase/, "the existing passphrase is kept");
});

t.test("key type, lifetimes, subjects and a passphrase file", async (t) => {
  const dir = await tempDir(t);
  const passphraseFile = join(dir, "secret", "pass");
  const result = await init([
    "--dir", join(dir, "ca"), "--key-type", "Ed25519", "--root-days", "30", "--issuing-days", "10",
    "--root-subject", "CN=Acme Root CA,O=Acme", "--issuing-subject", "CN=Acme Issuing CA,O=Acme",
    "--passphrase-file", passphraseFile,
  ]);
  t.equal(result.code, 0, result.stderr);
  t.equal(await mode(passphraseFile), 0o600, "the passphrase file is created 0600");
  t.match(result.stdout, /export POSTERN_CA_PASSPHRASE=/, "start will not find it on its own: say how");
  const root = new X509Certificate(await readFile(join(dir, "ca", "root-ca.crt")));
  const issuing = new X509Certificate(await readFile(join(dir, "ca", "issuing-ca.crt")));
  t.equal(root.publicKey.asymmetricKeyType, "ed25519");
  t.match(root.subject, /CN=Acme Root CA/);
  t.match(issuing.subject, /CN=Acme Issuing CA/);
  const days = (c: X509Certificate) => (Date.parse(c.validTo) - Date.now()) / 86_400_000;
  t.ok(days(root) > 29 && days(root) <= 30, "--root-days");
  t.ok(days(issuing) > 9 && days(issuing) <= 10, "--issuing-days");
});

t.test("the gateway's first start loads the CA init made and issues the missing leaves", async (t) => {
  const dir = await tempDir(t);
  t.equal((await init(["--dir", dir])).code, 0);
  const root = await readFile(join(dir, "root-ca.crt"), "utf8");
  const { created, createdFiles } = await ensurePki({ dir, hostnames: [], env: {} });
  t.equal(created, false, "the CA is loaded, not replaced");
  t.equal(await readFile(join(dir, "root-ca.crt"), "utf8"), root);
  for (const file of ["server.crt", "server.key", "demo-client.crt", "admin.crt"]) {
    t.ok(createdFiles.includes(join(dir, file)), `${file} issued on first start`);
  }
  const { stdout } = await run("openssl", ["verify", "-CAfile", join(dir, "ca-bundle.pem"), join(dir, "server.crt")]);
  t.match(stdout, /: OK/);
});

t.test("bad command lines exit 2; a bad subject exits 1 naming it", async (t) => {
  const dir = await tempDir(t);
  for (const args of [["--key-type", "RSA-1024"], ["--root-days", "0"], ["--issuing-days", "x"], ["--bogus"], ["extra"]]) {
    const result = await init(["--dir", dir, ...args]);
    t.equal(result.code, 2, args.join(" "));
    t.match(result.stderr, /postern init \[options\]/, "with the usage");
  }
  const subject = await init(["--dir", dir, "--root-subject", "O=No Common Name"]);
  t.equal(subject.code, 1);
  t.match(subject.stderr, /needs a CN/);
  const help = await init(["--help"]);
  t.equal(help.code, 0);
  t.match(help.stdout, /--passphrase-file/);
});
