/**
 * `--json` on every command that prints data, through the built CLI against a real gateway:
 * each prints one JSON document with the documented field names, and its --help names --json.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t, { type Test } from "tap";
import { adminFlags, postern, startPostern, type PosternProcess } from "../helpers/postern-process.js";

t.setTimeout(420_000);

const dir = await mkdtemp(join(tmpdir(), "postern-cli-json-"));
const certs = join(dir, "certs");
await writeFile(join(dir, "postern.yaml"), "");
const env = { POSTERN_CONFIG: join(dir, "postern.yaml") };
let gateway: PosternProcess | undefined = await startPostern(dir, env, 120_000);
t.teardown(async () => {
  await gateway?.stop();
  await rm(dir, { recursive: true, force: true });
});
const admin = adminFlags(certs, gateway.adminPort);
const adminUrl = `https://127.0.0.1:${gateway.adminPort}`;

/** Runs the CLI and parses stdout as one JSON document. */
async function json(t: Test, args: string[], expectCode = 0): Promise<Record<string, unknown>> {
  const result = await postern(dir, env, args);
  t.equal(result.code, expectCode, `${args.slice(0, 2).join(" ")}: exit ${expectCode} ${result.stderr}`);
  try {
    return JSON.parse(result.stdout) as Record<string, unknown>;
  } catch {
    t.fail(`${args.slice(0, 2).join(" ")} printed no JSON: ${result.stdout}`);
    return {};
  }
}

t.test("every command's --help documents --json", async (t) => {
  for (const command of ["cert", "keys", "audit", "token", "pki", "explain", "verify", "enroll", "renew", "init", "config"]) {
    const help = await postern(dir, env, [command, "--help"]);
    t.match(help.stdout, /--json/, `${command} --help`);
  }
});

t.test("token, enroll, renew, cert, explain, keys, audit, send + verify, pki backup with --json", async (t) => {
  const token = await json(t, ["token", "create", "--id", "spiffe://postern.local/client/jsontest", "--json", ...admin]);
  t.match(token, { token: String, expiresAt: /^\d{4}-\d\d-\d\dT/ });

  const enrolled = await json(t, ["enroll", "--url", adminUrl, "--token", String(token.token), "--ca", join(certs, "ca-bundle.pem"), "--out", join(dir, "enrolled"), "--name", "jsontest", "--json"]);
  t.match(enrolled, { identity: "spiffe://postern.local/client/jsontest", roles: Array, serial: /^[0-9a-f]+$/, notAfter: String, files: { key: join(dir, "enrolled", "jsontest.key"), certificate: join(dir, "enrolled", "jsontest.crt") } });

  const renewed = await json(t, ["renew", "--url", adminUrl, "--cert", join(dir, "enrolled", "jsontest.crt"), "--key", join(dir, "enrolled", "jsontest.key"), "--ca", join(certs, "ca-bundle.pem"), "--out", join(dir, "renewed"), "--json"]);
  t.match(renewed, { identity: "spiffe://postern.local/client/jsontest", previousSerial: enrolled.serial, files: { newKey: false } });
  t.not(renewed.serial, enrolled.serial);

  const listed = await json(t, ["cert", "list", "--id", "spiffe://postern.local/client/jsontest", "--json", ...admin]);
  t.equal((listed.items as unknown[]).length, 2);
  const revoked = await json(t, ["cert", "revoke", "--serial", String(enrolled.serial), "--reason", "superseded", "--json", ...admin]);
  t.match(revoked, { revoked: [{ serial: enrolled.serial, identity: "spiffe://postern.local/client/jsontest", revokedAt: String }] });

  const allowed = await json(t, ["explain", "--identity", "spiffe://postern.local/client/demo", "--role", "client", "--path", "/v1/messages/orders", "--json", ...admin]);
  t.match(allowed, { allowed: true, checks: Array });
  const denied = await json(t, ["explain", "--identity", "spiffe://postern.local/client/demo", "--path", "/v1/messages/orders", "--json", ...admin], 1);
  t.equal(denied.allowed, false, "exit 1 and allowed: false without the role");

  const keys = await json(t, ["keys", "list", "--json"]);
  t.match(keys, { activeKid: String, keys: [{ status: "active", createdAt: String, publishUntil: null }] });
  const rotated = await json(t, ["keys", "rotate", "--overlap", "1h", "--json"]);
  t.match(rotated, { activeKid: String, retiredKid: keys.activeKid, retiredPublishUntil: String, prunedKids: Array });

  const audit = await json(t, ["audit", "verify", "--json"]);
  t.match(audit, { ok: true, lines: Number, head: /^[0-9a-f]{64}$/, actions: { "token.create": 1 }, start: { genesis: true } });

  const sent = await postern(dir, env, ["send", "--url", `https://localhost:${gateway!.dataPort}/v1/messages/demo`, "--cert", join(certs, "demo-client.crt"), "--key", join(certs, "demo-client.key"), "--ca", join(certs, "ca-bundle.pem"), "--data", '{"hello":"json"}']);
  const sentJson = JSON.parse(sent.stdout) as { status: number; id: string };
  t.equal(sentJson.status, 202);
  const jwks = `http://127.0.0.1:${gateway!.publicPort}/.well-known/postern-keys`;
  const verified = await json(t, ["verify", "--jwks", jwks, "--entry", join(dir, "data", "messages.jsonl"), "--json"]);
  t.match(verified, { ok: true, messageId: sentJson.id, identity: "spiffe://postern.local/client/demo", bytes: 16, contentType: "application/json", clientCertSha256: String });

  const backup = await json(t, ["pki", "backup", "--out", join(dir, "backup.json"), "--json"]);
  t.match(backup, { file: join(dir, "backup.json"), certificates: Number, revoked: 1, tokens: Number, store: String });
});

t.test("with the gateway stopped: pki restore and reissue; init in a new directory", async (t) => {
  await gateway!.stop();
  gateway = undefined;
  const restored = await json(t, ["pki", "restore", "--file", join(dir, "backup.json"), "--json"]);
  t.match(restored, { file: join(dir, "backup.json"), takenAt: String, store: String, certificatesAdded: 0, revocationsApplied: Number, tokensAdded: Number, acceptedLost: [] });
  const reissued = await json(t, ["pki", "reissue", "--only", "demo", "--json"]);
  t.match(reissued, { issued: [{ kind: "demo", serial: String }], superseded: Array, publicBaseUrl: String });

  const initDir = join(dir, "other-ca");
  const init = await json(t, ["init", "--dir", initDir, "--json"]);
  t.match(init, { dir: initDir, keyAlgorithm: String, root: { file: join(initDir, "root-ca.crt"), notAfter: String }, issuing: { subject: String }, files: Array });
});
