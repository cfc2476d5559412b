/**
 * A pod's TLS material renewed through its Secret, played by processes: the PKI directory is
 * laid out as the kubelet writes a Secret volume (each file a symlink through `..data`, itself
 * a symlink to a timestamped directory, swapped by one rename). After `postern pki reissue
 * --only server` where the PKI was bootstrapped and a new Secret, the running read-only gateway
 * serves the new serial to new handshakes without a restart, an open connection keeps
 * working, and the new certificate goes on record in the cluster's audit log; a Secret with a
 * key that does not match keeps the serial and is counted.
 */
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { canonicalSerial } from "../../src/pki/serial.js";
import { POD_PKI_FILES } from "../../src/pki/index.js";
import { runTool } from "../helpers/process.js";
import { bootstrapKubernetesPki, eventually, postern, startPostern } from "../helpers/postern-process.js";
import { answerOn, openTls, tlsMaterial } from "../helpers/raw-tls.js";
import { signRawRequest } from "../helpers/signed-raw.js";

t.setTimeout(600_000);

const root = await mkdtemp(join(tmpdir(), "postern-secret-"));
t.teardown(() => rm(root, { recursive: true, force: true }));

const { config: CONFIG, dir: bootstrap, env: bootstrapEnv, certs } = await bootstrapKubernetesPki(root);

const volume = (name: string) => join(root, "volumes", name);
for (const name of ["signing-keys", "state", "store", "data"]) await mkdir(volume(name), { recursive: true });
const secret = join(root, "secret");
await mkdir(secret);

let generation = 0;
/** Writes `files` (name -> source path) as the kubelet updates a Secret volume: a new directory, `..data` swapped to it by one rename. */
async function publishSecret(files: Record<string, string>): Promise<void> {
  generation += 1;
  const stamped = `..2026_12_01_00_00_0${generation}.${generation}`;
  await mkdir(join(secret, stamped));
  for (const [name, source] of Object.entries(files)) await copyFile(source, join(secret, stamped, name));
  await symlink(stamped, join(secret, "..data_tmp"));
  await rename(join(secret, "..data_tmp"), join(secret, "..data"));
  for (const name of Object.keys(files)) await symlink(join("..data", name), join(secret, name)).catch(() => undefined); // first time only
}
const fromBootstrap = () => Object.fromEntries(POD_PKI_FILES.map((name) => [name, join(certs, name)]));

async function servedSerial(port: number): Promise<string> {
  const result = await runTool("sh", ["-c", `openssl s_client -connect 127.0.0.1:${port} -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -serial`]);
  const hex = /^serial=([0-9A-F]+)$/m.exec(result.stdout)?.[1];
  if (!hex) throw new Error(`no serial from openssl s_client: ${result.stdout}${result.stderr}`);
  return canonicalSerial(hex);
}

t.test("a new Secret (pki reissue --only server) is served without a restart; a broken one is refused and counted", async (t) => {
  await publishSecret(fromBootstrap());
  const gw = await startPostern(root, {
    POSTERN_CONFIG: CONFIG,
    POSTERN_PKI_READ_ONLY: "1",
    POSTERN_PKI_DIR: secret,
    POSTERN_CA_PASSPHRASE_FILE: join(certs, "ca-passphrase"),
    POSTERN_PKI_SIGNING_KEYS_DIR: volume("signing-keys"),
    POSTERN_PKI_STATE_DIR: volume("state"),
    POSTERN_AUDIT_LOG: join(volume("state"), "audit.jsonl"),
    POSTERN_PKI_STORE_DIR: volume("store"),
    POSTERN_DATA_DIR: volume("data"),
    POSTERN_HANDSHAKES_PER_SECOND_PER_ADDRESS: "0",
  });
  t.teardown(() => gw.stop());
  const before = await servedSerial(gw.dataPort);
  const material = await tlsMaterial(certs);
  const socket = await openTls(gw.dataPort, material);
  t.teardown(() => socket.destroy());
  const post = () => answerOn(socket, signRawRequest(material, { authority: `localhost:${gw.dataPort}`, path: "/v1/messages/orders", body: "{}" }).text());
  t.equal(await post(), 202, "a keep-alive connection, opened before");

  const reissued = await postern(bootstrap, bootstrapEnv, ["pki", "reissue", "--only", "server"]);
  t.equal(reissued.code, 0, reissued.stderr);
  const renewed = /re-issued server with a new key: ([0-9a-f]+)/.exec(reissued.stdout)?.[1];
  t.ok(renewed, reissued.stdout);
  await publishSecret(fromBootstrap());
  await eventually("the new serial is served", async () => (await servedSerial(gw.dataPort)) === renewed);
  t.not(renewed, before);
  t.equal(await post(), 202, "the connection opened before still carries messages");
  await eventually("the new certificate is on record in the cluster", async () =>
    new RegExp(`"action":"certificate\\.adopt","subject":"${renewed}"[^\\n]*"reason":"reload"`).test(await readFile(join(volume("state"), "audit.jsonl"), "utf8")),
  );

  const keyOfOther = join(root, "other.key");
  await runTool("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", keyOfOther]);
  const failures = async () => {
    const text = await (await fetch(`${gw.publicUrl}/metrics`)).text();
    return Number(/^postern_reload_failures_total\{what="server_key"\} (\d+)/m.exec(text)?.[1]);
  };
  t.equal(await failures(), 0);
  await publishSecret({ ...fromBootstrap(), "server.key": keyOfOther });
  await eventually("the mismatched key is counted", async () => (await failures()) === 1);
  t.equal(await servedSerial(gw.dataPort), renewed, "new handshakes keep the certificate before");
  t.match(await gw.logged(/TLS reload refused/), /"reason":"does not match the certificate in server\.crt","what":"server_key","trigger":"watch"/);
  t.equal(await gw.stop(), 0);
});
