/**
 * The web console in headless Chromium (Debian's `chromium`, driven by playwright-core), with
 * the admin's PKCS#12 from `postern cert issue --p12` as the browser's client certificate:
 * list, search, open a certificate, revoke it with a TOTP code from `oathtool`, see it
 * revoked, and see that certificate's live data-plane connection disappear. An ordinary client
 * certificate gets 403 on the console and its API; a browser without a certificate gets
 * nothing. Screenshots are kept in test-artifacts/console/. Without a launchable Chromium or
 * oathtool the whole file is skipped with a note saying so.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { connect, type TLSSocket } from "node:tls";
import t from "tap";
import { createCsr } from "../../src/pki/issue/csr-create.js";
import { generateKeyPair, plainPrivateKeyPem } from "../../src/pki/keys/keys.js";
import { startGateway } from "../helpers/gateway.js";
import { finished, ROOT, runTool, spawnTs } from "../helpers/process.js";

t.setTimeout(300_000);

const CHROMIUM = process.env.POSTERN_TEST_CHROMIUM ?? "/usr/bin/chromium";
const ARTIFACTS = join(ROOT, "test-artifacts", "console");

function skipAll(why: string): never {
  process.stderr.write(`\n*** console browser test SKIPPED: ${why} ***\n\n`);
  t.plan(0, `SKIPPED: ${why}`);
  process.exit(0);
}

const { chromium } = await import("playwright-core").catch(() => skipAll("playwright-core is not installed"));
const oathtool = await runTool("oathtool", ["--version"]).catch(() => undefined);
if (!oathtool || oathtool.code !== 0) skipAll("oathtool is not installed (apt-get install -y oathtool)");
const browser = await chromium
  .launch({ executablePath: CHROMIUM, headless: true, args: ["--headless", "--no-sandbox", "--disable-gpu"], timeout: 60_000 })
  .catch((error: Error) => skipAll(`Chromium at ${CHROMIUM} cannot be launched (apt-get install -y chromium): ${error.message.split("\n")[0]}`));
t.teardown(() => browser.close());
await mkdir(ARTIFACTS, { recursive: true });

// The gateway's clock is the test's, so each accepted one-time code's 30 s step can be left
// behind without waiting (the browser's TLS needs no clock beyond certificate validity).
let clockMs = Date.now();
const nextStep = () => void (clockMs += 30_000);
// The victim's idle connection must outlive a slow machine's pauses (the header timeout counts from connect).
const gw = await startGateway({ limits: { headersTimeoutSeconds: 300 } }, { now: () => clockMs });
t.teardown(() => gw.stop());
const work = await gw.workDir();
const env = { POSTERN_PKI_DIR: gw.certs, POSTERN_DATA_DIR: join(gw.dir, "data"), POSTERN_CA_PASSPHRASE: "" };
const cli = (args: string[]) => finished(spawnTs("src/cli/main.ts", args, { env: { ...env, P12_PASSWORD: "console-test" } }));
const admin = await gw.adminClient();
const BROWSER_ADMIN = "spiffe://postern.local/admin/browser";

async function code(secret: string): Promise<string> {
  const out = await runTool("oathtool", ["--totp", "-b", secret, "-N", `@${Math.floor(clockMs / 1000)}`]);
  return out.stdout.trim();
}

// The browser's admin credentials, as an operator would make them, then its second factor.
const adminP12 = join(work, "browser-admin.p12");
const issuedP12 = await cli(["cert", "issue", "--p12", adminP12, "--id", BROWSER_ADMIN, "--profile", "admin", "--password-env", "P12_PASSWORD", ...gw.adminFlags]);
if (issuedP12.code !== 0) throw new Error(issuedP12.stderr);
const enrolled = await cli(["admin", "otp", "enroll", "--id", BROWSER_ADMIN, "--no-qr"]);
const secret = /secret \(base32\): ([A-Z2-7]+)/.exec(enrolled.stdout)?.[1];
if (!secret) throw new Error(enrolled.stdout + enrolled.stderr);
// The operator's CLI admin enrolls too (mode auto: everyone needs a code once anyone has one).
const operatorSecret = /secret \(base32\): ([A-Z2-7]+)/.exec((await cli(["admin", "otp", "enroll", "--id", "spiffe://postern.local/admin/operator", "--no-qr"])).stdout)![1]!;

/** A client certificate for `name`, with its key, issued through the admin API (with a code). */
async function issueClient(name: string): Promise<{ serial: string; cert: string; key: string }> {
  const { privateKey } = await generateKeyPair("P-256");
  const csr = createCsr({ privateKey, identity: `spiffe://postern.local/client/${name}` });
  nextStep();
  admin.setOneTimeCode(await code(operatorSecret));
  const issued = (await admin.call("POST", "/v1/certificates", { csr, roles: ["client"] })) as { serial: string; certificate: string };
  admin.setOneTimeCode(undefined);
  return { serial: issued.serial, cert: issued.certificate, key: plainPrivateKeyPem(privateKey) };
}

const victim = await issueClient("console-victim");
await issueClient("console-bystander");

/** A live keep-alive connection on the data plane with `who`'s certificate. */
async function liveConnection(who: { cert: string; key: string }): Promise<TLSSocket> {
  const ca = await readFile(gw.caBundle);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port: gw.addresses.data.port, servername: "localhost", ca, cert: who.cert, key: who.key }, () => resolve(socket));
    socket.once("error", reject);
  });
}
const victimSocket = await liveConnection(victim);
const victimClosed = new Promise<void>((resolve) => victimSocket.once("close", () => resolve()));
victimSocket.on("error", () => undefined);
victimSocket.resume(); // a paused socket would never see the end of its stream

const adminOrigin = gw.adminUrl;
async function context(certificate: "admin" | "none") {
  const clientCertificates = certificate === "admin" ? [{ origin: adminOrigin, pfx: await readFile(adminP12), passphrase: "console-test" }] : [];
  return browser.newContext({ ignoreHTTPSErrors: true, clientCertificates });
}

t.test("an admin lists, searches, opens, revokes with a TOTP code, and the certificate's live connection disappears", async (t) => {
  const ctx = await context("admin");
  t.teardown(() => ctx.close());
  const page = await ctx.newPage();
  const violations: string[] = [];
  page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()); });
  const response = await page.goto(`${adminOrigin}/console/`);
  t.equal(response?.status(), 200);
  t.match(response?.headers()["content-security-policy"] ?? "", /script-src 'self'/);
  await page.waitForSelector("table#certs tbody tr");
  t.equal(await page.textContent("#whoami"), BROWSER_ADMIN);
  await page.screenshot({ path: join(ARTIFACTS, "1-inventory.png"), fullPage: true });

  await page.fill("#search", "console-victim");
  await page.press("#search", "Enter");
  await page.waitForFunction(() => document.querySelectorAll("table#certs tbody tr").length === 1);
  t.equal(await page.getAttribute("table#certs tbody tr", "data-serial"), victim.serial);
  await page.screenshot({ path: join(ARTIFACTS, "2-search.png"), fullPage: true });

  // The live connection of that certificate, before.
  await page.goto(`${adminOrigin}/console/#/connections`);
  await page.waitForSelector("table#connections");
  t.equal(await page.locator(`table#connections tr[data-serial="${victim.serial}"]`).count(), 1, "the victim's data-plane connection is listed");
  await page.screenshot({ path: join(ARTIFACTS, "3-connections-before.png"), fullPage: true });

  await page.goto(`${adminOrigin}/console/#/certificates?q=console-victim`);
  await page.click(`a.cert-link:text("${victim.serial}")`);
  await page.waitForSelector("#revoke-form");
  t.match(await page.textContent("#cert-status") ?? "", /valid/);
  t.match(await page.textContent("#cert-ocsp") ?? "", /good/);
  t.equal(await page.locator("table#chain tbody tr").count(), 3, "leaf, issuing CA, root");

  // Without a code, then with a wrong one: refused, nothing changes.
  await page.selectOption("#revoke-reason", "keyCompromise");
  await page.evaluate(() => document.querySelector("#revoke-otp")!.removeAttribute("required"));
  await page.click("#revoke-button");
  await page.waitForSelector("#message.error");
  t.match(await page.textContent("#message") ?? "", /401 otp-required/);
  nextStep();
  const right = await code(secret!);
  await page.fill("#revoke-otp", String((Number(right) + 1) % 1_000_000).padStart(6, "0"));
  await page.click("#revoke-button");
  await page.waitForFunction(() => /otp-invalid/.test(document.querySelector("#message")?.textContent ?? ""));
  t.match(await page.textContent("#cert-status") ?? "", /valid/, "still valid");

  await page.fill("#revoke-otp", right);
  await page.click("#revoke-button");
  await page.waitForFunction(() => /revoked/.test(document.querySelector("#cert-status")?.textContent ?? ""));
  t.match(await page.textContent("#cert-status") ?? "", /revoked \(keyCompromise/);
  t.match(await page.textContent("#cert-ocsp") ?? "", /revoked/);
  await page.screenshot({ path: join(ARTIFACTS, "4-revoked.png"), fullPage: true });

  await victimClosed; // the gateway closed the revoked certificate's connection
  await page.goto(`${adminOrigin}/console/#/connections`);
  await page.waitForSelector("table#connections");
  t.equal(await page.locator(`table#connections tr[data-serial="${victim.serial}"]`).count(), 0, "its live connection is gone");
  await page.screenshot({ path: join(ARTIFACTS, "5-connections-after.png"), fullPage: true });

  const record = (await admin.listCertificates(new URLSearchParams({ status: "revoked", limit: "1000" }))).items.find((i) => i.serial === victim.serial);
  t.equal(record?.revocationReason, "keyCompromise", "the admin API agrees");
  t.same(violations, [], "no Content Security Policy violation");
});

t.test("the audit view shows the chain verified and the second factor's use; the token form needs a code", async (t) => {
  const ctx = await context("admin");
  t.teardown(() => ctx.close());
  const page = await ctx.newPage();
  await page.goto(`${adminOrigin}/console/#/audit`);
  await page.waitForSelector("#audit-verification");
  t.match(await page.textContent("#audit-verification") ?? "", /chain verified/);
  t.match(await page.textContent("table#audit") ?? "", /admin\.otp\.accepted/);
  await page.screenshot({ path: join(ARTIFACTS, "6-audit.png"), fullPage: true });
  await page.goto(`${adminOrigin}/console/#/tokens`);
  await page.fill("#token-identity", "spiffe://postern.local/client/from-console");
  nextStep();
  await page.fill("#token-otp", await code(secret!));
  await page.click("#token-button");
  await page.waitForSelector("#token-value");
  t.match(await page.textContent("#token-value") ?? "", /^\S{20,}$/);
});

t.test("the traffic chart draws the data plane's accepted and refused messages", async (t) => {
  const client = await gw.client();
  t.equal((await client.send("/v1/messages/orders", JSON.stringify({ n: 1 }))).status, 202);
  const ctx = await context("admin");
  t.teardown(() => ctx.close());
  const page = await ctx.newPage();
  await page.goto(`${adminOrigin}/console/#/traffic`);
  await page.waitForSelector("#traffic-chart .seg");
  t.match(await page.textContent(".legend") ?? "", /accepted: 1/);
  await page.screenshot({ path: join(ARTIFACTS, "8-traffic.png"), fullPage: true });
});

t.test("CSRF: a mutating call from another origin, or without the token, is refused", async (t) => {
  const ctx = await context("admin");
  t.teardown(() => ctx.close());
  const page = await ctx.newPage();
  await page.goto(`${adminOrigin}/console/`);
  await page.waitForSelector("table#certs");
  const status = await page.evaluate(async () => (await fetch("/v1/tokens", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ identity: "spiffe://postern.local/client/x" }) })).json());
  t.equal(status.code, "csrf", "same origin without the token");
});

t.test("an ordinary client certificate gets 403 on the console and its API; no certificate gets nothing", async (t) => {
  // The victim is revoked by now: a fresh client certificate.
  const outsider = await issueClient("console-outsider");
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, clientCertificates: [{ origin: adminOrigin, cert: Buffer.from(outsider.cert), key: Buffer.from(outsider.key) }] });
  t.teardown(() => ctx.close());
  const clientPage = await ctx.newPage();
  const consoleAnswer = await clientPage.goto(`${adminOrigin}/console/`);
  t.equal(consoleAnswer?.status(), 403);
  t.match(await consoleAnswer?.text() ?? "", /"code":"forbidden"/);
  const apiAnswer = await clientPage.goto(`${adminOrigin}/v1/console/session`);
  t.equal(apiAnswer?.status(), 403);
  await clientPage.screenshot({ path: join(ARTIFACTS, "7-client-certificate-403.png") });

  const anonymous = await context("none");
  t.teardown(() => anonymous.close());
  const anonPage = await anonymous.newPage();
  const anonAnswer = await anonPage.goto(`${adminOrigin}/console/`);
  t.equal(anonAnswer?.status(), 401);
  const body = await anonAnswer?.text() ?? "";
  t.match(body, /"code":"unauthenticated"/);
  t.notMatch(body, /<script/, "no console file without a certificate");
});

await writeFile(join(ARTIFACTS, "README.txt"), "Screenshots from test/e2e/console-browser.test.ts (headless Chromium).\n");
