import { X509Certificate, createPrivateKey } from "node:crypto";
import { copyFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import t from "tap";
import { createCsr } from "../../src/pki/issue/csr-create.js";
import { identityFromCertificate } from "../../src/pki/identity.js";
import { generateKeyPair, plainPrivateKeyPem } from "../../src/pki/keys/keys.js";
import { startGateway } from "../helpers/gateway.js";
import { finished, spawnTs } from "../helpers/process.js";

t.setTimeout(240_000);

const gw = await startGateway();
t.teardown(() => gw.stop());
const work = await gw.workDir();
const caBundle = gw.caBundle;
const adminUrl = gw.adminUrl;
const adminFlags = gw.adminFlags;
const admin = await gw.adminClient();

const cli = (args: string[]) => finished(spawnTs("src/cli/main.ts", args, { env: { POSTERN_CA_PASSPHRASE: "" } }));
const id = (name: string) => `spiffe://postern.local/client/${name}`;

/** A key made here, its CSR in a file. */
async function keyAndCsr(name: string, file = name): Promise<{ keyFile: string; csrFile: string }> {
  const { privateKey } = await generateKeyPair("P-256");
  const keyFile = join(work, `${file}.key`);
  const csrFile = join(work, `${file}.csr`);
  await writeFile(keyFile, plainPrivateKeyPem(privateKey), { mode: 0o600 });
  await writeFile(csrFile, createCsr({ privateKey, identity: id(name), roles: ["client"] }));
  return { keyFile, csrFile };
}

interface ListedJson {
  items: Array<{ serial: string; identity: string; status: string }>;
  nextCursor?: string;
}

t.test("cert issue --csr, cert list filters and paging, cert revoke by serial and by identity", async (t) => {
  const serials: Record<string, string> = {};
  const files = [["carol", "carol-1"], ["carol", "carol-2"], ["dave", "dave"]] as const;
  await Promise.all(files.map(async ([name, file]) => {
    const { csrFile } = await keyAndCsr(name, file);
    const out = join(work, `${file}.crt`);
    const issued = await cli(["cert", "issue", "--csr", csrFile, "--lifetime", "2h", "--out", out, ...adminFlags]);
    t.equal(issued.code, 0, issued.stderr);
    const leaf = new X509Certificate(await readFile(out));
    t.equal(identityFromCertificate(leaf).id, id(name));
    t.ok(Date.parse(leaf.validTo) - Date.now() <= 2 * 3600_000 + 1000, "--lifetime is honoured");
    serials[file] = identityFromCertificate(leaf).serial;
  }));

  const revoked = await cli(["cert", "revoke", "--serial", serials["carol-1"]!, "--reason", "superseded", ...adminFlags]);
  t.equal(revoked.code, 0, revoked.stderr);
  t.match(revoked.stdout, `revoked ${serials["carol-1"]}`);

  const list = async (args: string[]): Promise<ListedJson> => {
    const result = await cli(["cert", "list", "--json", ...args, ...adminFlags]);
    t.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as ListedJson;
  };
  const [valid, gone, soon, notSoon, first, all] = await Promise.all([
    list(["--id", id("carol"), "--status", "valid"]),
    list(["--id", id("carol"), "--status", "revoked"]),
    list(["--id", id("carol"), "--status", "valid", "--expiring-within", "3h"]),
    list(["--id", id("carol"), "--expiring-within", "1h"]),
    list(["--limit", "1"]),
    list(["--limit", "1", "--all"]),
  ]);
  t.same(soon.items.map((i) => i.serial), [serials["carol-2"]], "--expiring-within 3h finds the 2 h certificate");
  t.same(notSoon.items, [], "--expiring-within 1h finds none");
  t.same(valid.items.map((i) => i.serial), [serials["carol-2"]], "valid certificates of one identity");
  t.same(gone.items.map((i) => i.serial), [serials["carol-1"]], "revoked certificates of one identity");

  t.equal(first.items.length, 1, "one per page");
  t.ok(first.nextCursor, "and a cursor to the next");
  const second = await list(["--limit", "1", "--cursor", first.nextCursor!]);
  t.equal(second.items.length, 1);
  t.not(second.items[0]!.serial, first.items[0]!.serial, "the cursor moves on");
  t.notOk(all.nextCursor, "--all follows every cursor");
  const serialsListed = all.items.map((i) => i.serial);
  t.equal(new Set(serialsListed).size, serialsListed.length, "no certificate twice");
  for (const s of Object.values(serials)) t.ok(serialsListed.includes(s), `--all includes ${s}`);
  t.ok(all.items.length >= 5, "the bootstrap's demo and admin certificates are in the inventory too");

  const table = await cli(["cert", "list", "--id", id("carol"), "--limit", "1", ...adminFlags]);
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, /^SERIAL +IDENTITY +STATUS +NOT AFTER\n[0-9a-f]+ +spiffe:\/\/postern\.local\/client\/carol +(valid|revoked) +\d{4}-/);
  t.match(table.stderr, /more: --cursor \S+/, "the next page is offered");

  const byIdentity = await cli(["cert", "revoke", "--id", id("dave"), "--reason", "keyCompromise", ...adminFlags]);
  t.equal(byIdentity.code, 0, byIdentity.stderr);
  t.match(byIdentity.stdout, `revoked 1 certificate(s) of ${id("dave")}`);
  t.same((await list(["--id", id("dave"), "--status", "valid"])).items, [], "nothing of dave is valid any more");

  const unknown = await cli(["cert", "revoke", "--serial", "0badc0de", ...adminFlags]);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /404 not-found/);
});

t.test("renew: with the certificate being renewed (same identity, new serial); a revoked one cannot", async (t) => {
  const { keyFile, csrFile } = await keyAndCsr("erin");
  const certFile = join(work, "erin.crt");
  const issued = await cli(["cert", "issue", "--csr", csrFile, "--out", certFile, ...adminFlags]);
  t.equal(issued.code, 0, issued.stderr);
  const original = identityFromCertificate(new X509Certificate(await readFile(certFile)));
  const renewFlags = ["--url", adminUrl, "--ca", caBundle];

  const outDir = join(work, "renewed");
  const sameKey = await cli(["renew", "--cert", certFile, "--key", keyFile, "--out", outDir, ...renewFlags]);
  t.equal(sameKey.code, 0, sameKey.stderr);
  const renewed = new X509Certificate(await readFile(join(outDir, "erin.crt")));
  t.equal(identityFromCertificate(renewed).id, original.id, "same identity");
  t.same(identityFromCertificate(renewed).roles, original.roles, "same roles");
  t.not(identityFromCertificate(renewed).serial, original.serial, "new serial");
  t.ok(renewed.checkPrivateKey(createPrivateKey(await readFile(keyFile))), "same key");

  const oldKey = await readFile(keyFile, "utf8");
  const newKey = await cli(["renew", "--cert", certFile, "--key", keyFile, "--new-key", ...renewFlags]);
  t.equal(newKey.code, 0, newKey.stderr);
  const rekeyed = new X509Certificate(await readFile(certFile));
  const rekey = await readFile(keyFile, "utf8");
  t.not(rekey, oldKey, "a new key replaced the old one in place");
  t.ok(rekeyed.checkPrivateKey(createPrivateKey(rekey)), "the new certificate is for the new key");
  t.equal(identityFromCertificate(rekeyed).id, original.id);

  await admin.call("POST", `/v1/certificates/${identityFromCertificate(rekeyed).serial}/revoke`, { reason: "keyCompromise" });
  const refused = await cli(["renew", "--cert", certFile, "--key", keyFile, "--out", join(work, "never"), ...renewFlags]);
  t.equal(refused.code, 1, "a revoked certificate cannot renew");
  t.match(refused.stderr, /refused the TLS handshake/);
});

t.test("audit verify passes on the gateway's log and names the line of a tampered copy", async (t) => {
  const log = join(gw.dir, "data", "audit.jsonl");
  const ok = await cli(["audit", "verify", "--file", log]);
  t.equal(ok.code, 0, ok.stderr);
  const lines = Number(/^ok, (\d+) lines, head [0-9a-f]{64}$/m.exec(ok.stdout)?.[1]);
  t.ok(lines >= 8, `the actions above are audited (${lines} lines)`);

  const copy = join(work, "audit-tampered.jsonl");
  await copyFile(log, copy);
  const text = (await readFile(copy, "utf8")).split("\n");
  text[2] = text[2]!.replace(/"actor":"[^"]*"/, '"actor":"someone else"');
  await writeFile(copy, text.join("\n"));
  const tampered = await cli(["audit", "verify", "--file", copy]);
  t.equal(tampered.code, 1);
  t.match(tampered.stdout, /line 3: changed/);
});
