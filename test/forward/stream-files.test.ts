import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { TemplatedFileStreamBackend } from "../../src/forward/stream-files.js";
import { compileStreamTemplate } from "../../src/forward/stream-template.js";
import { MemoryReplayGuard } from "../../src/replay/memory-guard.js";
import { startGateway } from "../helpers/gateway.js";

const lines = async (path: string) => (await readFile(path, "utf8")).trim().split("\n").map((l) => JSON.parse(l) as { id: string; fields: Record<string, string> });

t.test("embedded mode: one fsynced file per resolved stream name", async (t) => {
  const gw = await startGateway({ backends: { messages: { type: "stream", stream: "orders-{param.topic}" } } });
  t.teardown(() => gw.stop());
  const client = await gw.client();
  const eu = await client.send("/v1/messages/eu", '{"n":1}');
  await client.send("/v1/messages/us", '{"n":2}');
  await client.send("/v1/messages/eu", '{"n":3}');
  const dir = join(gw.dir, "data", "messages");
  t.same((await readdir(dir)).sort(), ["orders-eu.jsonl", "orders-us.jsonl"]);
  const euLines = await lines(join(dir, "orders-eu.jsonl"));
  t.equal(euLines.length, 2);
  t.equal(euLines[0]!.fields["message-id"], eu.id);
  t.equal((await lines(join(dir, "orders-us.jsonl"))).length, 1);

  const bad = await client.dispatch(client.prepare("/v1/messages/a:b", "{}"));
  t.equal(bad.status, 400);
  t.equal((bad.body as { code: string }).code, "bad-request");

  // The nonce guard is the backend's, not the file's: one nonce, one message, whichever stream.
  const message = client.prepare("/v1/messages/eu", "{}");
  t.equal((await client.dispatch(message)).status, 202);
  t.equal((await client.dispatch(message)).status, 409);
  t.equal((await lines(join(dir, "orders-eu.jsonl"))).length, 3);
});

t.test("embedded mode: a fixed name keeps the one <backend>.jsonl file", async (t) => {
  const gw = await startGateway({ backends: { messages: { type: "stream", stream: "messages", trim: { strategy: "none" } } } });
  t.teardown(() => gw.stop());
  const client = await gw.client();
  await client.send("/v1/messages/eu", "{}");
  t.equal((await lines(join(gw.dir, "data", "messages.jsonl"))).length, 1);
});

t.test("past maxFiles resolved names, a new name is refused and nothing is claimed", async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), "postern-stream-files-"));
  const { privateKey } = generateKeyPairSync("ed25519");
  const guard = new MemoryReplayGuard(Date.now);
  const backend = new TemplatedFileStreamBackend("b", {
    dataDir,
    template: compileStreamTemplate("s-{param.topic}"),
    guard,
    signer: { key: privateKey, keyid: "k" },
    maxFiles: 2,
  });
  t.teardown(async () => {
    await backend.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  const message = (topic: string, nonce: string) =>
    backend.deliver(
      {
        messageId: nonce,
        route: "r",
        params: { topic },
        identity: { id: "c", roles: [], serial: "01", fingerprint: "fp", notAfterMs: 0 },
        clientCertDer: new Uint8Array([1, 2, 3]),
        method: "POST",
        authority: "localhost",
        path: `/v1/${topic}`,
        query: "",
        contentType: "application/json",
        contentDigest: "sha-256=:x:",
        body: Buffer.from("{}"),
        receivedAtMs: Date.now(),
      },
      { backend: "b", client: "fp", nonce: `nonce-${nonce}-0123456789`, digest: "d", expiresAtMs: Date.now() + 60_000 },
    );
  t.equal((await message("a", "1")).kind, "accepted");
  t.equal((await message("b", "2")).kind, "accepted");
  t.equal((await message("a", "3")).kind, "accepted", "a known name still works");
  await t.rejects(message("c", "4"), { code: "backend-unavailable" });
  t.equal((await message("a", "4")).kind, "accepted", "the refused message's nonce is unspent");
  t.same((await readdir(join(dataDir, "b"))).sort(), ["s-a.jsonl", "s-b.jsonl"]);
});
