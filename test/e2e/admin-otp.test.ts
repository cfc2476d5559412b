/**
 * The admin's second factor from outside: `postern admin otp enroll` shows the secret once,
 * `oathtool --totp` (Debian's, sharing no code with Postern) computes the codes, and the admin
 * API refuses a revoke without a code, with a wrong one and with a reused one, changing
 * nothing, before one with a fresh code succeeds; failures are rate-limited; the CLI takes
 * --otp and says so without a terminal; every use is in the audit log.
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import t from "tap";
import { PosternRequestError } from "../../src/client/index.js";
import { createCsr } from "../../src/pki/issue/csr-create.js";
import { generateKeyPair } from "../../src/pki/keys/keys.js";
import { startGateway } from "../helpers/gateway.js";
import { finished, ROOT, runTool, spawnTs } from "../helpers/process.js";

t.setTimeout(240_000);

const oathtool = await runTool("oathtool", ["--version"]).catch(() => undefined);
if (!oathtool || oathtool.code !== 0) {
  t.plan(0, "SKIPPED: oathtool is not installed (apt-get install -y oathtool): the second factor is not checked against an independent TOTP implementation");
  process.exit(0);
}

// The gateway's clock is the test's: each accepted code spends its 30 s step, and the test
// moves on to the next step instead of waiting for it.
let clockMs = Date.now();
const nextStep = () => void (clockMs += 30_000);
const gw = await startGateway({ admin: { otp: { maxFailures: 6, failureWindowSeconds: 60 } } }, { now: () => clockMs });
t.teardown(() => gw.stop());
const env = { POSTERN_PKI_DIR: gw.certs, POSTERN_DATA_DIR: join(gw.dir, "data"), POSTERN_CA_PASSPHRASE: "" };
const cli = (args: string[]) => finished(spawnTs("src/cli/main.ts", args, { env }));
const admin = await gw.adminClient();
const ADMIN_ID = "spiffe://postern.local/admin/operator";

/** oathtool's code for the gateway's current time step. */
async function code(secret: string): Promise<string> {
  const out = await runTool("oathtool", ["--totp", "-b", secret, "-N", `@${Math.floor(clockMs / 1000)}`]);
  if (out.code !== 0) throw new Error(out.stderr);
  return out.stdout.trim();
}

async function issue(name: string, otp?: string): Promise<string> {
  const { privateKey } = await generateKeyPair("P-256");
  const csr = createCsr({ privateKey, identity: `spiffe://postern.local/client/${name}` });
  admin.setOneTimeCode(otp);
  try {
    return ((await admin.call("POST", "/v1/certificates", { csr, roles: ["client"] })) as { serial: string }).serial;
  } finally {
    admin.setOneTimeCode(undefined);
  }
}

function revoke(serial: string, otp?: string): Promise<unknown> {
  admin.setOneTimeCode(otp);
  return admin.call("POST", `/v1/certificates/${serial}/revoke`, { reason: "keyCompromise" }).finally(() => admin.setOneTimeCode(undefined));
}

async function status(serial: string): Promise<string> {
  const all = await admin.listCertificates(new URLSearchParams({ limit: "1000" }));
  return all.items.find((i) => i.serial === serial)?.status ?? "missing";
}

async function refusal(promise: Promise<unknown>): Promise<{ status: number; code: string }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof PosternRequestError) return { status: error.status, code: error.code };
    throw error;
  }
  return { status: 200, code: "none" };
}

// Who the bootstrapped admin certificate names.
const whoami = (await admin.listCertificates(new URLSearchParams({ limit: "1000" }))).items.find((i) => i.roles.includes("admin"))?.identity;

t.test("before any enrollment (mode auto) no code is asked for", async (t) => {
  t.equal(whoami, ADMIN_ID);
  t.match(await issue("before"), /^[0-9a-f]+$/i);
});

let secret = "";
t.test("postern admin otp enroll shows the otpauth URI, a QR code and the secret once", async (t) => {
  const out = await cli(["admin", "otp", "enroll", "--id", ADMIN_ID]);
  t.equal(out.code, 0, out.stderr);
  t.match(out.stdout, /^otpauth:\/\/totp\/Postern:/);
  t.match(out.stdout, /[▀▄█]/, "a QR code drawn in the terminal");
  secret = /secret \(base32\): ([A-Z2-7]+)/.exec(out.stdout)?.[1] ?? "";
  t.equal(secret.length, 32, "20 random bytes");
  t.equal(new URL(out.stdout.split("\n")[0]!).searchParams.get("secret"), secret);
  const stored = await readFile(join(gw.certs, "state", "admin-otp.json"), "utf8");
  t.notMatch(stored, secret, "stored encrypted");
  const again = await cli(["admin", "otp", "enroll", "--id", ADMIN_ID]);
  t.equal(again.code, 1, "a second enrollment is refused without --replace");
  t.match(again.stderr, /already has a second factor/);
  const list = await cli(["admin", "otp", "list"]);
  t.match(list.stdout, ADMIN_ID);
});

t.test("revoke: no code 401, wrong code 403, a code from oathtool succeeds, the same code again 403; refusals change nothing", async (t) => {
  const a = await issue("victim-a", await code(secret));
  nextStep();
  const b = await issue("victim-b", await code(secret));
  t.same(await refusal(revoke(a)), { status: 401, code: "otp-required" });
  const spent = await code(secret);
  nextStep();
  const right = await code(secret);
  const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, "0");
  t.same(await refusal(revoke(a, wrong)), { status: 403, code: "otp-invalid" });
  t.same(await refusal(revoke(a, "12ab56")), { status: 403, code: "otp-invalid" });
  t.equal(await status(a), "valid", "nothing changed");
  t.same(await refusal(revoke(a, spent)), { status: 403, code: "otp-reused" }, "the code that issued b (one step back, within the drift allowed)");
  t.equal(await status(a), "valid", "nothing changed");
  const revoked = (await revoke(a, right)) as { status: string };
  t.equal(revoked.status, "revoked");
  t.same(await refusal(revoke(b, right)), { status: 403, code: "otp-reused" }, "the code that revoked a cannot revoke b");
  t.equal(await status(b), "valid");
  nextStep();
  t.equal(((await revoke(b, await code(secret))) as { status: string }).status, "revoked", "the next step's code does");
});

t.test("token create and PKCS#12 issuance need the code too; reading does not", async (t) => {
  t.same(await refusal(admin.createToken({ identity: "spiffe://postern.local/client/tok" })), { status: 401, code: "otp-required" });
  t.same(await refusal(admin.issuePkcs12({ identity: "spiffe://postern.local/client/p12", password: "pw" })), { status: 401, code: "otp-required" });
  t.ok((await admin.listCertificates()).items.length > 0);
  nextStep();
  admin.setOneTimeCode(await code(secret));
  const token = await admin.createToken({ identity: "spiffe://postern.local/client/tok" });
  admin.setOneTimeCode(undefined);
  t.type(token.token, "string");
});

t.test("the CLI: without --otp and without a terminal it names --otp and changes nothing; with --otp from oathtool it revokes", async (t) => {
  nextStep();
  const serial = await issue("cli-victim", await code(secret));
  const bare = await cli(["cert", "revoke", "--serial", serial, ...gw.adminFlags]);
  t.equal(bare.code, 1);
  t.match(bare.stderr, /otp-required.*--otp CODE/);
  t.equal(await status(serial), "valid");
  nextStep();
  const withCode = await cli(["cert", "revoke", "--serial", serial, "--otp", await code(secret), ...gw.adminFlags]);
  t.equal(withCode.code, 0, withCode.stderr);
  t.match(withCode.stdout, /^revoked /);
  t.equal(await status(serial), "revoked");
  nextStep();
  const token = await cli(["token", "create", "--id", "spiffe://postern.local/client/cli-tok", "--otp", await code(secret), ...gw.adminFlags]);
  t.equal(token.code, 0, token.stderr);
});

t.test("the CLI on a terminal asks for the code when the gateway wants one", async (t) => {
  nextStep();
  const serial = await issue("tty-victim", await code(secret));
  nextStep();
  const command = [process.execPath, join(ROOT, "dist/cli/main.js"), "cert", "revoke", "--serial", serial, ...gw.adminFlags].map((a) => `'${a}'`).join(" ");
  // script(1) gives the CLI a terminal; what the test writes to script's stdin is typed into it.
  const child = spawn("script", ["-qec", command, "/dev/null"], { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  const done = new Promise<number | null>((resolve) => child.on("close", resolve));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no prompt: ${out}`)), 60_000);
    const check = () => { if (/one-time code: /.test(out)) { clearTimeout(timer); resolve(); } };
    child.stdout.on("data", check);
  });
  child.stdin.on("error", () => undefined); // script gone already: its exit code tells
  child.stdin.write(`${await code(secret)}\n`);
  t.equal(await done, 0, out);
  t.match(out, /revoked /);
  t.equal(await status(serial), "revoked");
});

t.test("too many refused codes: 429 rate-limited, even for a right code, until the window passes", async (t) => {
  clockMs += 61_000; // the earlier tests' refusals age out of the window
  const serial = await issue("limited", await code(secret));
  nextStep();
  for (let i = 0; i < 6; i++) t.same(await refusal(revoke(serial, "000000" === (await code(secret)) ? "111111" : "000000")), { status: 403, code: "otp-invalid" });
  t.same(await refusal(revoke(serial, await code(secret))), { status: 429, code: "rate-limited" });
  t.equal(await status(serial), "valid");
  clockMs += 61_000;
  t.equal(((await revoke(serial, await code(secret))) as { status: string }).status, "revoked");
});

t.test("the audit log records enrollment, each accepted and refused code, and the chain verifies", async (t) => {
  const lines = (await readFile(join(gw.dir, "data", "audit.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l) as { action: string; actor: string; details: Record<string, unknown> });
  const otp = lines.filter((l) => l.action.startsWith("admin.otp."));
  t.equal(otp[0]?.action, "admin.otp.enroll");
  t.ok(otp.some((l) => l.action === "admin.otp.accepted" && l.details.action === "revoke" && l.actor === ADMIN_ID));
  for (const c of ["otp-required", "otp-invalid", "otp-reused"]) t.ok(otp.some((l) => l.action === "admin.otp.refused" && l.details.code === c), c);
  const verify = await cli(["audit", "verify"]);
  t.equal(verify.code, 0, verify.stdout + verify.stderr);
});
