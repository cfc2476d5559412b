/**
 * The console's files and API from outside, with curl as a user would: who gets the console
 * (admins only), its headers (a strict CSP, no framing), the CSRF rule for browser-shaped
 * requests (and none for the CLI's), live connections and closing one with a second factor,
 * the audit view's verification, and the traffic counters the charts draw.
 */
import { readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { connect, type TLSSocket } from "node:tls";
import t from "tap";
import type { AuditViewJson, ConnectionJson, ConsoleSessionJson, TrafficJson } from "../../src/client/index.js";
import { hotp, totpStep } from "../../src/pki/otp/index.js";
import { startGateway } from "../helpers/gateway.js";
import { finished, runTool, spawnTs } from "../helpers/process.js";

t.setTimeout(240_000);

let clockMs = Date.now();
// Idle test connections must outlive a slow machine's pauses (the header timeout counts from connect).
const gw = await startGateway({ limits: { headersTimeoutSeconds: 300 } }, { now: () => clockMs });
t.teardown(() => gw.stop());
const work = await gw.workDir();
const certs = gw.certs;

/** curl against the admin listener with one of the bootstrapped certificates (or none). */
async function curl(path: string, opts: { who?: "admin" | "demo-client" | "none"; method?: string; headers?: Record<string, string>; body?: string } = {}) {
  const who = opts.who ?? "admin";
  const out = join(work, `h-${Math.random().toString(36).slice(2)}`);
  const args = ["-sS", "--cacert", gw.caBundle, "-D", out, "-o", "-", "-w", "\n%{http_code}", "-X", opts.method ?? "GET"];
  if (who !== "none") args.push("--cert", join(certs, `${who}.crt`), "--key", join(certs, `${who}.key`));
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push("-H", `${k}: ${v}`);
  if (opts.body !== undefined) args.push("-H", "content-type: application/json", "--data-binary", opts.body);
  const r = await runTool("curl", [...args, `${gw.adminUrl}${path}`]);
  const lines = r.stdout.split("\n");
  const status = Number(lines.pop());
  const headers = (await readFile(out, "utf8").catch(() => "")).toLowerCase();
  const text = lines.join("\n");
  return { status, text, headers, json: () => JSON.parse(text) as Record<string, unknown> };
}

t.test("the console is for admins: files with a strict CSP; 403 for a client certificate, 401 without one", async (t) => {
  const index = await curl("/console/");
  t.equal(index.status, 200);
  t.match(index.headers, /content-security-policy: default-src 'none'; script-src 'self'; style-src 'self'/);
  t.match(index.headers, /x-frame-options: deny/);
  t.match(index.text, /<script type="module" src="\/console\/app.js"><\/script>/);
  t.notMatch(index.text, /<script>|on(click|load)=/, "no inline script in the page");
  const app = await curl("/console/app.js");
  t.equal(app.status, 200);
  t.match(app.headers, /content-type: text\/javascript/);
  t.notMatch(app.text, /https?:\/\/(?!postern)/, "nothing fetched from elsewhere");
  t.equal((await curl("/console")).status, 308);
  t.equal((await curl("/console/../package.json")).status, 404);
  t.equal((await curl("/console/nope.js")).status, 404);

  const client = await curl("/console/", { who: "demo-client" });
  t.equal(client.status, 403);
  t.equal(client.json().code, "forbidden");
  t.equal((await curl("/v1/console/session", { who: "demo-client" })).status, 403);
  t.equal((await curl("/v1/connections", { who: "demo-client" })).status, 403);
  const none = await curl("/console/", { who: "none" });
  t.equal(none.status, 401);
  t.equal(none.json().code, "unauthenticated");
  t.notMatch(none.text, /script/);
});

t.test("CSRF: a browser-shaped mutating call needs the same origin and the session's token; the CLI's does not", async (t) => {
  const session = (await curl("/v1/console/session")).json() as unknown as ConsoleSessionJson;
  t.match(session.csrfToken, /^[A-Za-z0-9_-]{43}$/);
  const body = JSON.stringify({ identity: "spiffe://postern.local/client/csrf" });
  const cross = await curl("/v1/tokens", { method: "POST", body, headers: { origin: "https://evil.example", "sec-fetch-site": "cross-site", "postern-csrf": session.csrfToken } });
  t.equal(cross.status, 403);
  t.equal(cross.json().code, "csrf");
  const noToken = await curl("/v1/tokens", { method: "POST", body, headers: { origin: gw.adminUrl, "sec-fetch-site": "same-origin" } });
  t.equal(noToken.json().code, "csrf");
  const otherToken = await curl("/v1/tokens", { method: "POST", body, headers: { origin: gw.adminUrl, "postern-csrf": "x".repeat(43) } });
  t.equal(otherToken.json().code, "csrf");
  const good = await curl("/v1/tokens", { method: "POST", body, headers: { origin: gw.adminUrl, "sec-fetch-site": "same-origin", "postern-csrf": session.csrfToken } });
  t.equal(good.status, 201, good.text);
  const cli = await curl("/v1/tokens", { method: "POST", body });
  t.equal(cli.status, 201, "no Origin, no Sec-Fetch-Site: not a browser");
});

t.test("live connections: listed per identity; closing one needs a code once an admin enrolled, and is audited", async (t) => {
  const ca = await readFile(gw.caBundle);
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port: gw.addresses.data.port, servername: "localhost", ca, cert: readFileSync(join(certs, "demo-client.crt")), key: readFileSync(join(certs, "demo-client.key")) }, () => resolve(s));
    s.once("error", reject);
  });
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.on("error", () => undefined);
  socket.resume(); // a paused socket would never see the end of its stream
  const list = (await curl("/v1/connections")).json() as unknown as { items: ConnectionJson[] };
  const demo = list.items.find((c) => c.listener === "data" && c.identity === "spiffe://postern.local/client/demo");
  t.ok(demo, "the demo client's data-plane connection");

  const enrolled = await finished(spawnTs("src/cli/main.ts", ["admin", "otp", "enroll", "--id", "spiffe://postern.local/admin/operator", "--no-qr"], { env: { POSTERN_PKI_DIR: certs, POSTERN_DATA_DIR: join(gw.dir, "data"), POSTERN_CA_PASSPHRASE: "" } }));
  const secret = base32Decode(/secret \(base32\): ([A-Z2-7]+)/.exec(enrolled.stdout)![1]!);
  const session = (await curl("/v1/console/session")).json() as unknown as ConsoleSessionJson;
  t.same(session.secondFactor, { token: true, issue: true, revoke: true, "connection-close": true });

  const path = `/v1/connections/data/${demo!.id}/close`;
  const refused = await curl(path, { method: "POST", body: "{}" });
  t.equal(refused.status, 401);
  t.equal(refused.json().code, "otp-required");
  t.equal(socket.destroyed, false, "still open");
  const ok = await curl(path, { method: "POST", body: "{}", headers: { "postern-otp": hotp(secret, totpStep(clockMs)) } });
  t.equal(ok.status, 200, ok.text);
  await closed;
  clockMs += 30_000;
  const again = await curl(path, { method: "POST", body: "{}", headers: { "postern-otp": hotp(secret, totpStep(clockMs)) } });
  t.equal(again.status, 404, "gone");

  const audit = (await curl("/v1/audit")).json() as unknown as AuditViewJson;
  t.equal(audit.verification.ok, true);
  t.ok(audit.events.some((e) => e.action === "connection.close" && e.subject === demo!.serial));
  t.ok(audit.events.some((e) => e.action === "admin.otp.accepted" && (e.details as { action?: string }).action === "connection-close"));
});

t.test("the audit view names a broken chain", async (t) => {
  const file = join(gw.dir, "data", "audit.jsonl");
  const lines = (await readFile(file, "utf8")).split("\n");
  lines[1] = lines[1]!.replace(/"actor":"[^"]*"/, '"actor":"someone-else"');
  await writeFile(file, lines.join("\n"));
  const audit = (await curl("/v1/audit")).json() as unknown as AuditViewJson;
  t.same(audit.verification, { ok: false, line: 2, reason: "changed" });
});

t.test("traffic: the last hour's accepted and refused messages per minute, from the gateway's own counters", async (t) => {
  const client = await gw.client();
  const sent = await client.send("/v1/messages/orders", JSON.stringify({ hello: 1 }));
  t.equal(sent.status, 202);
  const bad = await runTool("curl", ["-sS", "--cacert", gw.caBundle, "--cert", join(certs, "demo-client.crt"), "--key", join(certs, "demo-client.key"), "-H", "content-type: application/json", "--data-binary", "{}", `${gw.dataUrl}/v1/messages/orders`]);
  t.match(bad.stdout, /digest-missing|signature-missing/);
  const traffic = (await curl("/v1/traffic")).json() as unknown as TrafficJson;
  t.equal(traffic.minutes.length, 60);
  const total = (o: string) => traffic.minutes.reduce((n, m) => n + (m.outcomes[o] ?? 0), 0);
  t.equal(total("accepted"), 1);
  t.equal(total("digest-missing") + total("signature-missing"), 1);
});

function base32Decode(text: string): Buffer {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const ch of text) {
    value = (value << 5) | alphabet.indexOf(ch);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}
