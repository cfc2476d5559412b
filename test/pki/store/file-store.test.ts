import t from "tap";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStore } from "../../../src/pki/store/file-store.js";
import { certRecord, runAndKill, runStoreContract, tokenRecord } from "./store-contract.js";


const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "postern-store-"));
  dirs.push(d);
  return d;
};
t.teardown(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

runStoreContract(t, async () => {
  const dir = tempDir();
  const harness = {
    store: await FileStore.open(dir) as FileStore,
    reopen: async () => {
      await harness.store.close();
      return FileStore.open(dir);
    },
  };
  return harness;
});

const journal = (dir: string) => join(dir, "pki-store.jsonl");

t.test("a torn final line is ignored and cut off; earlier lines survive", async (t) => {
  const dir = tempDir();
  const store = await FileStore.open(dir);
  await store.putCertificate(certRecord("0a01"));
  await store.revoke("0a01", "keyCompromise", 5);
  await store.close();
  appendFileSync(journal(dir), '{"op":"cert","rec":{"serial":"0a02","ident');
  const reopened = await FileStore.open(dir);
  t.equal((await reopened.getCertificate("0a01"))?.status, "revoked");
  t.equal(await reopened.getCertificate("0a02"), undefined);
  await reopened.putCertificate(certRecord("0a03"));
  await reopened.close();
  t.ok(readFileSync(journal(dir), "utf8").endsWith("}\n"), "next append starts on a clean line");
  const again = await FileStore.open(dir);
  t.ok(await again.getCertificate("0a03"));
  await again.close();
});

t.test("a corrupt line in the middle stops the open (fail closed)", async (t) => {
  const dir = tempDir();
  const store = await FileStore.open(dir);
  await store.putCertificate(certRecord("0b01"));
  await store.close();
  appendFileSync(journal(dir), "garbage\n" + JSON.stringify({ op: "crl", n: "3" }) + "\n");
  await t.rejects(FileStore.open(dir), { code: "internal" });
});

t.test("compaction rewrites the journal and keeps every state, including writes made meanwhile", async (t) => {
  const dir = tempDir();
  let store = await FileStore.open(dir, { compactMinLines: 50 });
  const tok = tokenRecord();
  await store.putToken(tok);
  await Promise.all(Array.from({ length: 200 }, (_, i) => store.putCertificate(certRecord((0x1000 + i).toString(16)))));
  // 200 certs + 1 token: compaction starts past 2 x 202 journal lines, during these writes.
  await Promise.all(Array.from({ length: 150 }, (_, i) => store.revoke((0x1000 + i).toString(16), "superseded", i)));
  await Promise.all(Array.from({ length: 60 }, (_, i) => store.putCrlState({ crlNumber: BigInt(i + 1), thisUpdateMs: i, nextUpdateMs: i + 1, digest: `d${i}` })));
  await Promise.all(Array.from({ length: 50 }, (_, i) => store.revoke((0x1000 + i).toString(16), "superseded", i)));
  const n = (await store.putCrlState({ crlNumber: 61n, thisUpdateMs: 61, nextUpdateMs: 62, digest: "d61" })).crlNumber;
  await store.close();
  const lines = readFileSync(journal(dir), "utf8").split("\n").length - 1;
  t.ok(lines < 300, `journal compacted (${lines} lines, 412 written)`);
  store = await FileStore.open(dir);
  t.equal((await store.listRevoked()).length, 150);
  t.equal((await store.listCertificates({ status: "valid", limit: 1000 })).items.length, 50);
  t.equal((await store.getCrlState())?.crlNumber, n);
  t.equal((await store.getCrlState())?.digest, "d61");
  t.same(await store.consumeToken(tok.tokenHash, tok.createdAtMs), tok);
  await store.close();
});

t.test("a second live process cannot open the same directory; a stale lock is taken over", async (t) => {
  const dir = tempDir();
  writeFileSync(join(dir, "pki-store.lock"), String(process.ppid));
  await t.rejects(FileStore.open(dir), { code: "conflict" });
  writeFileSync(join(dir, "pki-store.lock"), "4194303"); // above Linux's pid_max: never alive
  const store = await FileStore.open(dir);
  await store.close();
});

t.test("kill -9 during writes loses nothing acknowledged and corrupts nothing", async (t) => {
  const dir = tempDir();
  const acked = await runAndKill("store", dir, /^cert /gm, 400);
  const store = await FileStore.open(dir);
  t.teardown(() => store.close());
  let missing = 0;
  for (const line of acked) {
    const [kind, serial] = line.split(" ");
    const rec = await store.getCertificate(serial ?? "");
    if (!rec || (kind === "revoked" && rec.status !== "revoked")) missing++;
  }
  t.equal(missing, 0, `all ${acked.length} acknowledged writes present`);
});

t.test("opens a journal of 100k revoked certificates quickly", async (t) => {
  const dir = tempDir();
  const lines: string[] = [];
  for (let i = 0; i < 100_000; i++) {
    const rec = certRecord((0x100000 + i).toString(16), { status: "revoked", revokedAtMs: i, revocationReason: "keyCompromise", pem: "-----BEGIN CERTIFICATE-----\n" + "A".repeat(700) + "\n-----END CERTIFICATE-----\n" });
    lines.push(JSON.stringify({ op: "cert", rec }));
  }
  writeFileSync(journal(dir), lines.join("\n") + "\n");
  const started = performance.now();
  const store = await FileStore.open(dir);
  const openMs = performance.now() - started;
  t.comment(`open 100k: ${openMs.toFixed(0)} ms`);
  t.equal((await store.listRevoked()).length, 100_000);
  t.ok(openMs < 10_000);
  await store.close();
});
