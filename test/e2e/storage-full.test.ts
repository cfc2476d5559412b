import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import t, { type Test } from "tap";
import type { PosternClient } from "../../src/client/index.js";
import { FaultyFileSystem } from "../helpers/faulty-fs.js";
import { startGateway, type TestGateway } from "../helpers/gateway.js";

const run = promisify(execFile);
type Prepared = ReturnType<PosternClient["prepare"]>;
type Answer = Awaited<ReturnType<PosternClient["dispatch"]>>;

const code = (answer: Answer) => (answer.body as { code?: string }).code;
const readiness = async (gw: TestGateway) => {
  const res = await fetch(`${gw.publicUrl}/readyz`);
  return { status: res.status, body: (await res.json()) as { storage?: string } };
};
async function waitReady(gw: TestGateway, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status } = await readiness(gw);
    if (status === 200 || Date.now() > deadline) return status;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every acknowledged id is in the file exactly once; every line is whole JSON; no refused body is there. */
async function checkFile(t: Test, path: string, accepted: string[], refused: Prepared[]) {
  const text = await readFile(path, "utf8");
  t.ok(text === "" || text.endsWith("\n"), "the file ends with a whole line");
  const entries = text
    .split("\n")
    .filter(Boolean)
    .map((line) => (JSON.parse(line) as { fields: Record<string, string> }).fields);
  const counts = new Map<string, number>();
  for (const fields of entries) counts.set(fields["message-id"]!, (counts.get(fields["message-id"]!) ?? 0) + 1);
  t.same(accepted.filter((id) => counts.get(id) !== 1), [], `each of ${accepted.length} acknowledged ids is stored exactly once`);
  t.equal(entries.length, accepted.length, "and nothing else is");
  const bodies = new Set(entries.map((fields) => fields.body));
  t.same(refused.filter((m) => bodies.has(Buffer.from(m.body).toString("base64"))).length, 0, "no refused message is stored");
}

/** Sends `messages` concurrently; sorts the answers into 202 ids and refused messages. */
async function sendAll(client: PosternClient, messages: Prepared[]) {
  const answers = await Promise.all(messages.map((m) => client.dispatch(m)));
  const accepted: string[] = [];
  const refused: Array<{ message: Prepared; answer: Answer }> = [];
  answers.forEach((answer, i) => {
    if (answer.status === 202) accepted.push((answer.body as { id: string }).id);
    else refused.push({ message: messages[i]!, answer });
  });
  return { accepted, refused };
}

t.test("injected faults (always runs): a failing disk loses no acknowledged message, and recovers without a restart", async (t) => {
  const fs = new FaultyFileSystem();
  const gw = await startGateway({}, { fileSystem: fs });
  t.teardown(() => gw.stop());
  const client = await gw.client();
  const file = join(gw.dir, "data", "messages.jsonl");

  const before = await sendAll(client, Array.from({ length: 5 }, (_, i) => client.prepare("/v1/messages/a", JSON.stringify({ before: i }))));
  t.equal(before.accepted.length, 5);

  // The disk fills: the next write is short, then every write fails.
  fs.inject("write", { shortBytes: 100 }, { path: /messages\.jsonl$/ });
  fs.failAlways("write", "ENOSPC");
  const full = await sendAll(client, Array.from({ length: 20 }, (_, i) => client.prepare("/v1/messages/a", JSON.stringify({ full: i }))));
  t.equal(full.accepted.length, 0);
  t.same([...new Set(full.refused.map((r) => `${r.answer.status} ${code(r.answer)}`))], ["503 storage-unavailable"]);
  t.equal(full.refused[0]!.answer.headers["retry-after"], "5");
  t.match((full.refused[0]!.answer.body as { detail: string }).detail, /nothing was stored/);
  const ready = await readiness(gw);
  t.equal(ready.status, 503, "not ready while storage fails");
  t.equal(ready.body.storage, "down");
  const metrics = await (await fetch(`${gw.publicUrl}/metrics`)).text();
  t.match(metrics, /postern_storage_up 0/);
  t.match(metrics, /postern_storage_failures_total\{reason="no_space"\} [1-9]/);

  // Space comes back; with no traffic at all, the probe makes the gateway ready again.
  fs.heal();
  t.equal(await waitReady(gw), 200, "ready again without a restart");
  t.match(await (await fetch(`${gw.publicUrl}/metrics`)).text(), /postern_storage_up 1/);

  // The refused requests, re-sent as they were: their nonces were never spent.
  const retried = await sendAll(client, full.refused.map((r) => r.message));
  t.equal(retried.accepted.length, 20, "every refused request succeeds as it was signed");
  await checkFile(t, file, [...before.accepted, ...retried.accepted], []);
});

/** A directory with a 2 MB tmpfs mounted at `<dir>/data`, or why there is none. */
async function smallTmpfs(): Promise<{ dir: string; data: string } | { refused: string }> {
  const dir = await mkdtemp(join(tmpdir(), "postern-tmpfs-"));
  const data = join(dir, "data");
  await mkdir(data);
  try {
    await run("mount", ["-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", data]);
    return { dir, data };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    return { refused: `mounting a tmpfs was refused here (needs root or CAP_SYS_ADMIN): ${String((error as Error).message).split("\n")[0]}` };
  }
}

const tmpfs = await smallTmpfs();

t.test("a real 2 MB tmpfs: every 202 is stored exactly once, 503 while full, recovery after space is freed", { skip: "refused" in tmpfs ? tmpfs.refused : false }, async (t) => {
  if ("refused" in tmpfs) return;
  const { dir, data } = tmpfs;
  let gw: TestGateway | undefined;
  t.teardown(async () => {
    await gw?.stop();
    await run("umount", [data]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  // The audit log goes elsewhere: this disk is for messages only.
  gw = await startGateway({ pki: { dir: join(dir, "certs"), auditLogPath: join(dir, "audit.jsonl") } }, { dir });
  const client = await gw.client();
  const filler = join(data, "filler");
  await writeFile(filler, Buffer.alloc(1536 * 1024));

  const accepted: string[] = [];
  const refused: Array<{ message: Prepared; answer: Answer }> = [];
  const message = (wave: number, i: number) => client.prepare("/v1/messages/a", JSON.stringify({ wave, i, pad: "x".repeat(30_000) }));
  // ~40 KB lines against ~0.5 MB of space: concurrent waves (group commit) until a batch fails ...
  let wave = 0;
  for (; wave < 20 && refused.length === 0; wave++) {
    const sent = await sendAll(client, Array.from({ length: 8 }, (_, i) => message(wave, i)));
    accepted.push(...sent.accepted);
    refused.push(...sent.refused);
  }
  // ... then one at a time until not even one message fits.
  for (let last = 0; last < 40; last++, wave++) {
    const sent = await sendAll(client, [message(wave, 0)]);
    accepted.push(...sent.accepted);
    refused.push(...sent.refused);
    if (sent.refused.length > 0) break;
  }
  t.ok(accepted.length > 0, `${accepted.length} accepted before the disk was full`);
  t.ok(refused.length > 0, `${refused.length} refused once it was`);
  t.same([...new Set(refused.map((r) => `${r.answer.status} ${code(r.answer)}`))], ["503 storage-unavailable"]);
  t.equal((await readiness(gw)).status, 503, "not ready while the disk is full");
  await checkFile(t, join(data, "messages.jsonl"), accepted, refused.map((r) => r.message));

  await rm(filler);
  t.equal(await waitReady(gw), 200, "ready again once space is freed, without traffic or a restart");
  const retried = await sendAll(client, refused.map((r) => r.message));
  t.equal(retried.refused.length, 0, "the refused requests succeed as they were signed");
  await checkFile(t, join(data, "messages.jsonl"), [...accepted, ...retried.accepted], []);
});
