/**
 * Rotation of embedded mode's files with real gateway processes: a run that rotates the message
 * files, the nonce journal and the audit log on every write; then restarts (clean and kill -9)
 * after which every re-send is still refused; no acknowledged message lost; consumers read
 * across the rotated files; `postern audit verify` checks the chain across them.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import type { PosternClient } from "../../src/client/index.js";
import { readEmbeddedEntries } from "../../src/consumer/index.js";
import { freePort } from "../helpers/net.js";
import { postern, startPostern, type PosternProcess } from "../helpers/postern-process.js";
import { demoClient } from "../helpers/replica.js";

t.setTimeout(240_000);

let forwarded = 0;
const upstream = createServer((req, res) => {
  forwarded += 1;
  req.resume();
  req.on("end", () => res.writeHead(200, { "content-type": "text/plain" }).end("done"));
});
await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
t.teardown(() => new Promise<void>((resolve) => upstream.close(() => resolve())));

const dir = await mkdtemp(join(tmpdir(), "postern-retention-"));
const data = join(dir, "data");
const every = "{ rotateBytes: 1, rotateAfterSeconds: 0 }";
await writeFile(
  join(dir, "postern.yaml"),
  [
    "data:",
    "  retention:",
    `    messages: ${every}`,
    `    nonces: ${every}`,
    `    audit: ${every}`,
    "backends:",
    "  messages: { type: stream }",
    `  orders: { type: http, url: "http://127.0.0.1:${(upstream.address() as AddressInfo).port}", tls: { clientCertificate: false } }`,
    "routes:",
    "  - { name: messages, path: /v1/messages/:topic, backend: messages, allow: { roles: [client] } }",
    "  - { name: orders, path: /v1/orders/:id, backend: orders, allow: { roles: [client] } }",
    "",
  ].join("\n"),
);
// The same data port on every start: a signed request covers @authority.
const port = await freePort();
const publicPort = await freePort();
const env = { POSTERN_CONFIG: join(dir, "postern.yaml"), POSTERN_DATA_PORT: String(port), POSTERN_ADMIN_PORT: "0", POSTERN_PUBLIC_PORT: String(publicPort) };
let running: PosternProcess | undefined;
const clients: PosternClient[] = [];
t.teardown(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  if (running) await running.stop();
  await rm(dir, { recursive: true, force: true });
});

async function start(): Promise<PosternClient> {
  // Generous: the machine may be loaded.
  running = await startPostern(dir, env, 120_000);
  const client = await demoClient(join(dir, "certs"), port);
  clients.push(client);
  return client;
}
async function stop(kill = false): Promise<void> {
  const replica = running!;
  running = undefined;
  await (kill ? replica.kill9() : replica.stop());
}
const filesOf = async (prefix: string) => (await readdir(data)).filter((n) => n === prefix || n.startsWith(prefix + ".")).sort();

t.test("a run that rotates on every write: after a restart and after kill -9 every re-send is refused; nothing acknowledged is lost", async (t) => {
  let client = await start();
  const sent = [];
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) {
    const m = client.prepare("/v1/messages/orders", JSON.stringify({ order: i }));
    const r = await client.dispatch(m);
    t.equal(r.status, 202, `message ${i}`);
    ids.push((r.body as { id: string }).id);
    sent.push(m);
  }
  const order = client.prepare("/v1/orders/1", JSON.stringify({ order: 1 }));
  t.equal((await client.dispatch(order)).status, 200);
  const order2 = client.prepare("/v1/orders/2", JSON.stringify({ order: 2 }));
  t.equal((await client.dispatch(order2)).status, 200);
  t.same(await filesOf("messages.jsonl"), ["messages.jsonl", "messages.jsonl.000001", "messages.jsonl.000002", "messages.jsonl.000003"], "each message after the first rotated the file");
  t.ok((await filesOf("nonces.jsonl")).includes("nonces.jsonl.000001"), "the nonce journal rotated");

  await stop();
  client = await start();
  for (const [i, m] of sent.entries()) {
    const again = await client.dispatch(m);
    t.equal(again.status, 409, `message ${i} re-sent after a restart`);
    t.equal((again.body as { messageId?: string }).messageId, ids[i], "naming the original");
  }
  t.equal((await client.dispatch(order)).status, 409, "the HTTP backend's claim from the rotated journal");
  t.same(await filesOf("nonces.jsonl"), ["nonces.jsonl"], "the start folded the rotated journals into one");

  // One more message rotates again; then kill -9 right after its 202.
  const last = client.prepare("/v1/messages/orders", JSON.stringify({ order: 99 }));
  const lastReply = await client.dispatch(last);
  t.equal(lastReply.status, 202);
  ids.push((lastReply.body as { id: string }).id);
  await stop(true);
  // As if a rotation had renamed the file and the process died before writing the next one.
  await rename(join(data, "messages.jsonl"), join(data, "messages.jsonl.000005"));
  client = await start();
  for (const m of [...sent, last]) t.equal((await client.dispatch(m)).status, 409, "refused after kill -9");
  t.equal((await client.dispatch(order2)).status, 409);
  t.equal(forwarded, 2, "the upstream saw each order once");

  // A consumer reads every acknowledged message once, in order, across the rotated files, and
  // resumes after an id.
  const read = [];
  for await (const entry of readEmbeddedEntries(join(data, "messages.jsonl"))) read.push(entry);
  t.same(read.map((e) => String(e.fields["message-id"])), ids, "every 202 once, in order");
  const resumed = [];
  for await (const entry of readEmbeddedEntries(join(data, "messages.jsonl"), { afterId: read[1]!.id })) resumed.push(entry.id);
  t.same(resumed, read.slice(2).map((e) => e.id));

  // postern verify finds an entry in a rotated file.
  const jwks = join(dir, "jwks.json");
  await writeFile(jwks, await (await fetch(`http://127.0.0.1:${publicPort}/.well-known/postern-keys`)).text());
  const verified = await postern(dir, env, ["verify", "--jwks", jwks, "--entry", join(data, "messages.jsonl"), "--id", read[0]!.id]);
  t.equal(verified.code, 0, verified.stdout + verified.stderr);
  t.match(verified.stdout, new RegExp(`^OK message ${ids[0]}`));
});

t.test("postern audit verify checks the chain across the rotated audit files and names a tampered or missing one", async (t) => {
  if (running) await stop();
  const files = await filesOf("audit.jsonl");
  t.ok(files.length >= 3, `${files.length} audit files`);
  const ok = await postern(dir, env, ["audit", "verify"]);
  t.equal(ok.code, 0, ok.stdout + ok.stderr);
  t.match(ok.stdout, new RegExp(`^ok, \\d+ lines, head [0-9a-f]{64}\\n${files.length} files; the chain starts at its first line\\n`));
  t.match(ok.stdout, /audit\.rotate/);

  const middle = join(data, "audit.jsonl.000001");
  const original = await readFile(middle, "utf8");
  await writeFile(middle, original.replace('"seq":1,', '"seq":1, '));
  const changed = await postern(dir, env, ["audit", "verify"]);
  t.equal(changed.code, 1);
  t.match(changed.stdout, /audit\.jsonl\.000001: line 1: changed/);
  await writeFile(middle, original);

  const second = join(data, "audit.jsonl.000002");
  await rename(second, join(dir, "aside"));
  const missing = await postern(dir, env, ["audit", "verify"]);
  t.equal(missing.code, 1);
  t.match(missing.stdout, /audit\.jsonl\.000002 is missing/);
  await rename(join(dir, "aside"), second);

  // Retention removed the oldest file: allowed, and the verifier says where the chain starts.
  await rm(middle);
  const retained = await postern(dir, env, ["audit", "verify"]);
  t.equal(retained.code, 0, retained.stdout);
  t.match(retained.stdout, /the chain starts at seq \d+ in \S+audit\.jsonl\.000002 \(earlier files, up to audit\.jsonl\.000001, were removed by retention\)/);
});

