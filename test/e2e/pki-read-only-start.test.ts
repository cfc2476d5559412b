/**
 * A gateway pod, played by processes, with deploy/kubernetes/postern.yaml: a PKI bootstrapped
 * by a normal start as deploy/README.md does it, then exactly the pod's files (POD_PKI_FILES)
 * copied into a directory nobody may write, and `postern start` run from it with pki.readOnly
 * as an unprivileged user (nobody, 65534, when the test runs as root), with writable "volumes"
 * for the signing keys, the trust ledger, the store, the audit log and data/. It serves the
 * demo client (whose credentials stayed in the bootstrap directory), writes not one byte into
 * the PKI directory, and a start missing any listed file exits non-zero naming that file. The
 * README's step that puts the demo and admin certificates on record (backup where the PKI was
 * bootstrapped, restore beside the pods) works too.
 */
import { chmod, chown, copyFile, mkdir, mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { POD_PKI_FILES } from "../../src/pki/index.js";
import type { ProcessUser } from "../helpers/process.js";
import { adminFlags, bootstrapKubernetesPki, eventually, failedStart, fileHashes, postern, startPostern } from "../helpers/postern-process.js";
import { demoClient } from "../helpers/replica.js";

t.setTimeout(600_000);

/** As root, run the gateway as nobody (what a pod's runAsNonRoot gives); otherwise as ourselves. */
const user: ProcessUser | undefined = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : undefined;

const root = await mkdtemp(join(tmpdir(), "postern-pod-"));
t.teardown(async () => {
  await makeWritable(root);
  await rm(root, { recursive: true, force: true });
});
await chmod(root, 0o755); // mkdtemp's 0700 would keep nobody out of everything below

// 1. A normal first start bootstraps the PKI (demo and admin credentials included), with the
// cluster's configuration and deploy/README.md's step 2 environment.
const { config: CONFIG, dir: bootstrap, env: bootstrapEnv, certs } = await bootstrapKubernetesPki(root);

// 2. The pod's volumes: the PKI Secret (read-only), the passphrase Secret, writable state.
const volumes = join(root, "volumes");
const volume = (name: string) => join(volumes, name);
for (const name of ["signing-keys", "state", "store", "data"]) await mkdir(volume(name), { recursive: true });
const secrets = join(root, "secrets");
await mkdir(secrets);
await copyFile(join(certs, "ca-passphrase"), join(secrets, "ca-passphrase"));
if (user) await chownTree(volumes, user);
await readOnlyTree(secrets);

/** A read-only copy of `names` from the bootstrap directory, as a Secret mount gives one. */
async function podDirectory(name: string, names: readonly string[]): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir);
  for (const file of names) await copyFile(join(certs, file), join(dir, file));
  await readOnlyTree(dir);
  return dir;
}

const pod = await podDirectory("pki", POD_PKI_FILES);
const podEnv = (pkiDir: string): Record<string, string> => ({
  POSTERN_CONFIG: CONFIG,
  POSTERN_PKI_READ_ONLY: "1",
  POSTERN_PKI_DIR: pkiDir,
  POSTERN_CA_PASSPHRASE_FILE: join(secrets, "ca-passphrase"),
  POSTERN_PKI_SIGNING_KEYS_DIR: volume("signing-keys"),
  POSTERN_PKI_STATE_DIR: volume("state"),
  POSTERN_AUDIT_LOG: join(volume("state"), "audit.jsonl"),
  POSTERN_PKI_STORE_DIR: volume("store"),
  POSTERN_DATA_DIR: volume("data"),
  POSTERN_HANDSHAKES_PER_SECOND_PER_ADDRESS: "0",
});

t.test("from exactly the pod's files, read-only, as an unprivileged user: ready, a 202 for the demo client, no byte written", async (t) => {
  t.comment(user ? "running the gateway as uid 65534 (nobody)" : `running the gateway as uid ${process.getuid?.()} (not root: no other user to switch to)`);
  const before = await fileHashes(pod);
  t.same(Object.keys(before).sort(), [...POD_PKI_FILES].sort(), "the pod directory holds exactly POD_PKI_FILES");
  const gw = await startPostern(root, podEnv(pod), 60_000, user);
  t.teardown(() => gw.stop());
  await eventually("/readyz answers 200", async () => (await fetch(`${gw.publicUrl}/readyz`)).status === 200);
  const client = await demoClient(certs, gw.dataPort);
  t.teardown(() => client.close());
  t.equal((await client.send("/v1/messages/orders", '{"from":"a pod"}')).status, 202, "the demo client, with its credentials from the bootstrap directory");
  const ring = await readdir(volume("signing-keys"));
  t.ok(ring.includes("ring.json"), "the signing-key ring was made on its volume");
  if (user) t.equal((await stat(join(volume("signing-keys"), "ring.json"))).uid, user.uid, "written by the unprivileged user");
  t.ok((await readdir(volume("state"))).includes("audit.jsonl"), "the audit log is on the state volume");
  t.equal(await gw.stop(), 0, "SIGTERM: drained and exited 0");
  t.notMatch(gw.stderr(), refusedWriteIn(pod), "no write into the PKI directory was even tried");
  t.same(await fileHashes(pod), before, "every file in the PKI directory is byte-identical, and there is no other");
});

t.test("a start missing any listed file exits non-zero naming that file, without a stack trace", async (t) => {
  for (const missing of POD_PKI_FILES) {
    const dir = await podDirectory(`pki-without-${missing}`, POD_PKI_FILES.filter((f) => f !== missing));
    const result = await failedStart(root, podEnv(dir), user);
    t.equal(result.code, 1, `without ${missing}: exit 1`);
    t.match(result.stderr, new RegExp(`cannot start: pki\\.readOnly: the PKI directory \\S+ lacks ${missing.replaceAll(".", "\\.")}; a gateway pod needs exactly`), missing);
    t.notMatch(result.stderr, /\n\s+at /, "no stack trace");
  }
});

t.test("the same start without pki.readOnly fails (it would issue client credentials into the directory) and writes nothing either", async (t) => {
  const before = await fileHashes(pod);
  const result = await failedStart(root, { ...podEnv(pod), POSTERN_PKI_READ_ONLY: "0" }, user);
  t.not(result.code, 0);
  t.match(result.stderr, /cannot start: .*(EACCES|EROFS|EPERM)/, "refused by the file system, the way Kubernetes refused it");
  t.match(result.stderr, refusedWriteIn(pod), "(what the first test makes sure never happens)");
  t.same(await fileHashes(pod), before);
});

t.test("the demo and admin certificates go on record beside the pods: backup where the PKI was bootstrapped, restore with the pod's configuration", async (t) => {
  const profiles = async () => {
    const gw = await startPostern(root, podEnv(pod), 60_000, user);
    try {
      const listed = await postern(bootstrap, {}, ["cert", "list", "--all", "--json", ...adminFlags(certs, gw.adminPort)]);
      t.equal(listed.code, 0, listed.stderr);
      return (JSON.parse(listed.stdout) as { items: Array<{ profile: string }> }).items.map((i) => i.profile).sort();
    } finally {
      t.equal(await gw.stop(), 0);
    }
  };
  const before = await fileHashes(pod);
  t.same(await profiles(), ["issuing-ca", "root-ca", "server"], "the pods record only what they read");
  const archive = join(root, "bootstrap.backup");
  const backup = await postern(bootstrap, bootstrapEnv, ["pki", "backup", "--out", archive]);
  t.equal(backup.code, 0, backup.stderr);
  if (user) await chown(archive, user.uid, user.gid); // kubectl cp hands the pod's user its own copy
  const restored = await postern(root, podEnv(pod), ["pki", "restore", "--file", archive], user);
  t.equal(restored.code, 0, restored.stderr);
  t.same(await profiles(), ["admin", "client", "issuing-ca", "root-ca", "server"], "now the cluster's inventory knows the client certificates");
  t.same(await fileHashes(pod), before, "and the PKI directory is still as it was");
});

t.test("renewing the server certificate as deploy/README.md says: pki reissue where the PKI was bootstrapped, a new Secret, the old one revoked over the admin plane", async (t) => {
  const reissued = await postern(bootstrap, bootstrapEnv, ["pki", "reissue", "--only", "server"]);
  t.equal(reissued.code, 0, reissued.stderr);
  const old = /revoked as superseded: ([0-9a-f]+)/.exec(reissued.stdout)?.[1];
  t.ok(old, `reissue names the certificate it replaced: ${reissued.stdout.trim()}`);
  const renewed = await podDirectory("pki-renewed", POD_PKI_FILES);
  const gw = await startPostern(root, podEnv(renewed), 60_000, user);
  t.teardown(() => gw.stop());
  await eventually("/readyz answers 200", async () => (await fetch(`${gw.publicUrl}/readyz`)).status === 200);
  const client = await demoClient(certs, gw.dataPort);
  t.teardown(() => client.close());
  t.equal((await client.send("/v1/messages/orders", "{}")).status, 202, "served with the new server certificate");
  const revoked = await postern(bootstrap, {}, ["cert", "revoke", "--serial", old!, "--reason", "superseded", ...adminFlags(certs, gw.adminPort)]);
  t.equal(revoked.code, 0, revoked.stderr);
  const audit = await readFile(join(volume("state"), "audit.jsonl"), "utf8");
  t.match(audit, /"action":"certificate\.adopt"[^\n]*"kind":"server"/, "the pods put the new certificate on record");
  t.match(audit, new RegExp(`"action":"certificate\\.revoke","subject":"${old}"`), "and the old one's revocation, in the cluster's audit log");
  t.equal(await gw.stop(), 0);
});

/**
 * A write the file system refused inside `dir`, as the log says it. Only inside `dir`: tap's
 * own process tracking, inherited through NODE_OPTIONS, logs an EACCES of its own as nobody.
 */
function refusedWriteIn(dir: string): RegExp {
  return new RegExp(`(EACCES|EROFS|EPERM)[^\n]*${dir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/`);
}

/** Files 0440 and directories 0550, owned by root and nobody's group when we are root: a Secret mount with fsGroup. */
async function readOnlyTree(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (user) await chown(join(dir, name), 0, user.gid);
    await chmod(join(dir, name), 0o440);
  }
  if (user) await chown(dir, 0, user.gid);
  await chmod(dir, 0o550);
}

async function chownTree(dir: string, owner: ProcessUser): Promise<void> {
  await chown(dir, owner.uid, owner.gid);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await chownTree(join(dir, entry.name), owner);
    else await chown(join(dir, entry.name), owner.uid, owner.gid);
  }
}

async function makeWritable(dir: string): Promise<void> {
  await chmod(dir, 0o755).catch(() => undefined);
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (entry.isDirectory()) await makeWritable(join(dir, entry.name));
  }
}
