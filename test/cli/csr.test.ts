import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import t from "tap";
import { newKeyWithCsr, parseKeyType } from "../../src/cli/csr.js";
import { UsageError } from "../../src/cli/usage.js";
import { createCsr } from "../../src/pki/issue/csr-create.js";
import { parseCsr, validateCsr } from "../../src/pki/issue/csr.js";
import { generateKeyPairNow, type KeyAlgorithm } from "../../src/pki/keys/keys.js";
import { DEFAULT_CLIENT_PROFILE } from "../../src/pki/issue/profile.js";
import { finished, spawnTs } from "../helpers/process.js";

t.setTimeout(300_000);
const run = promisify(execFile);
const dir = await mkdtemp(join(tmpdir(), "postern-cli-csr-"));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const ALICE = "spiffe://postern.local/client/alice";

t.test("createCsr: every key type, a self-signature openssl and the gateway's parser accept", async (t) => {
  for (const algorithm of ["P-256", "P-384", "Ed25519", "RSA-2048"] as KeyAlgorithm[]) {
    const { privateKey } = generateKeyPairNow(algorithm);
    const pem = createCsr({ privateKey, identity: ALICE, roles: ["client"] });
    const file = join(dir, `${algorithm}.csr`);
    await writeFile(file, pem);
    const { stderr, stdout } = await run("openssl", ["req", "-in", file, "-verify", "-noout"]);
    t.match(stderr + stdout, /verify OK/, `${algorithm}: openssl verifies the self-signature`);
    const csr = parseCsr(pem);
    t.same([csr.uris, csr.commonNames, csr.organizationalUnits], [[ALICE], ["alice"], ["client"]], algorithm);
    t.same(csr.extensionOids, ["2.5.29.17"], "no extension but the SAN");
    t.same(validateCsr(csr, DEFAULT_CLIENT_PROFILE), { identity: ALICE, roles: ["client"], dnsNames: [], ipAddresses: [], uris: [] });
  }
});

t.test("createCsr without an identity names nothing; the binding (token, renewal) supplies it", async (t) => {
  const { keyPem, csrPem } = await newKeyWithCsr("P-256");
  t.match(keyPem, /^-----BEGIN PRIVATE KEY-----/);
  const csr = parseCsr(csrPem);
  t.same([csr.uris, csr.commonNames, csr.organizationalUnits, csr.extensionOids], [[], [], [], []]);
  t.equal(validateCsr(csr, DEFAULT_CLIENT_PROFILE, { identity: ALICE, roles: ["client"] }).identity, ALICE);
  t.throws(() => validateCsr(csr, DEFAULT_CLIENT_PROFILE), { code: "csr-forbidden-name" }, "unbound, it names no identity");
});

t.test("a plain identity goes into the CN only", async (t) => {
  const csr = parseCsr(createCsr({ privateKey: generateKeyPairNow("P-256").privateKey, identity: "batch-job" }));
  t.same([csr.uris, csr.commonNames], [[], ["batch-job"]]);
});

t.test("parseKeyType", async (t) => {
  t.equal(parseKeyType(undefined), "P-256");
  t.equal(parseKeyType(undefined, "Ed25519"), "Ed25519");
  t.equal(parseKeyType("RSA-3072"), "RSA-3072");
  for (const bad of ["RSA-1024", "p-256", "", "ed25519"]) t.throws(() => parseKeyType(bad), UsageError, bad);
});

t.test("bad command lines of the PKI commands exit 2 with their usage, before any network", async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [["token"], /give an action/],
    [["token", "create"], /--id is required/],
    [["token", "create", "--id", ALICE, "--ttl", "1w"], /--ttl/],
    [["enroll", "--ca", "x"], /--token or --token-file/],
    [["enroll", "--token", "t"], /--ca or --ca-url/],
    [["enroll", "--token", "t", "--ca", "x", "--key-type", "DSA"], /--key-type/],
    [["cert"], /give an action/],
    [["cert", "issue"], /--csr FILE/],
    [["cert", "issue", "--p12", "x.p12", "--id", ALICE], /--password-file or --password-env/],
    [["cert", "issue", "--csr", "x", "--status", "valid"], /--status does not apply/],
    [["cert", "list", "--status", "expired"], /--status must be valid or revoked/],
    [["cert", "list", "--limit", "0"], /--limit/],
    [["cert", "list", "--all", "--cursor", "c"], /--all or --cursor/],
    [["cert", "revoke"], /--serial or --id/],
    [["cert", "revoke", "--serial", "01", "--reason", "bored"], /--reason must be one of/],
    [["renew", "--cert", "a.crt"], /--cert and --key are required/],
    [["renew", "--cert", "a", "--key", "b", "--key-type", "P-384"], /--new-key only/],
  ];
  const results = await Promise.all(cases.map(([args]) => finished(spawnTs("src/cli/main.ts", args))));
  cases.forEach(([args, message], i) => {
    t.equal(results[i]!.code, 2, args.join(" "));
    t.match(results[i]!.stderr, message, args.join(" "));
  });
  const commands = ["token", "enroll", "cert", "renew", "audit"];
  const helps = await Promise.all(commands.map((c) => finished(spawnTs("src/cli/main.ts", [c, "--help"]))));
  commands.forEach((command, i) => {
    t.equal(helps[i]!.code, 0);
    t.match(helps[i]!.stdout, `postern ${command}`);
  });
});
