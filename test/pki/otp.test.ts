import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { AuditLog } from "../../src/pki/audit/index.js";
import { AdminSecondFactor, base32, hotp, matchTotp, otpauthUri, totpStep } from "../../src/pki/otp/index.js";
import { openSecret, sealSecret } from "../../src/pki/otp/secret-box.js";
import { PosternError } from "../../src/errors.js";

const RFC_SECRET = Buffer.from("12345678901234567890");

t.test("HOTP: the RFC 4226 appendix D values", async (t) => {
  const expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
  expected.forEach((code, counter) => t.equal(hotp(RFC_SECRET, counter), code, `counter ${counter}`));
});

t.test("TOTP: the RFC 6238 appendix B values (SHA-1, last 6 digits)", async (t) => {
  const vectors: Array<[number, string]> = [[59, "94287082"], [1111111109, "07081804"], [1111111111, "14050471"], [1234567890, "89005924"], [2000000000, "69279037"]];
  for (const [seconds, code8] of vectors) t.equal(hotp(RFC_SECRET, totpStep(seconds * 1000)), code8.slice(2), `T=${seconds}`);
});

t.test("matchTotp: one step of drift either side, nothing further, malformed codes never", async (t) => {
  const now = 1_700_000_000_000;
  const step = totpStep(now);
  t.equal(matchTotp(RFC_SECRET, hotp(RFC_SECRET, step), now), step);
  t.equal(matchTotp(RFC_SECRET, hotp(RFC_SECRET, step - 1), now), step - 1);
  t.equal(matchTotp(RFC_SECRET, hotp(RFC_SECRET, step + 1), now), step + 1);
  t.equal(matchTotp(RFC_SECRET, hotp(RFC_SECRET, step + 2), now), undefined);
  t.equal(matchTotp(RFC_SECRET, hotp(RFC_SECRET, step - 2), now), undefined);
  for (const bad of ["", "12345", "1234567", "abcdef", " 12345"]) t.equal(matchTotp(RFC_SECRET, bad, now), undefined, JSON.stringify(bad));
});

t.test("base32 and the otpauth URI", async (t) => {
  t.equal(base32(Buffer.from("12345678901234567890")), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
  t.equal(base32(Buffer.from("f")), "MY");
  const uri = new URL(otpauthUri(RFC_SECRET, "spiffe://postern.local/admin/ops"));
  t.equal(uri.protocol, "otpauth:");
  t.equal(uri.host, "totp");
  t.equal(decodeURIComponent(uri.pathname), "/Postern:spiffe://postern.local/admin/ops");
  t.equal(uri.searchParams.get("secret"), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
  t.equal(uri.searchParams.get("period"), "30");
});

t.test("sealed secrets open only with the same key and the same identity", async (t) => {
  const key = Buffer.alloc(32, 7);
  const sealed = sealSecret(key, RFC_SECRET, "spiffe://a");
  t.same(openSecret(key, sealed, "spiffe://a"), RFC_SECRET);
  t.throws(() => openSecret(key, sealed, "spiffe://b"), { code: "internal" });
  t.throws(() => openSecret(Buffer.alloc(32, 8), sealed, "spiffe://a"), { code: "internal" });
});

t.test("AdminSecondFactor: policy, spent steps, failures, audit", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "postern-otp-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let now = 1_700_000_000_000;
  const audit = await AuditLog.open(join(dir, "audit.jsonl"), { now: () => now });
  t.teardown(() => audit.close());
  const policy = { mode: "auto" as const, actions: ["revoke", "issue", "token", "connection-close"] as const, maxFailures: 3, failureWindowSeconds: 60 };
  const factor = new AdminSecondFactor({ path: join(dir, "state", "admin-otp.json"), passphrase: "correct horse", policy: { ...policy, actions: [...policy.actions] }, audit, now: () => now });
  const admin = "spiffe://postern.local/admin/ops";
  const call = (code: string | undefined, identity = admin) => factor.verify({ identity, code, action: "revoke", subject: "/v1/x" });

  t.equal(await factor.required("revoke"), false, "auto: off while nobody enrolled");
  await call(undefined);
  const { secret, uri } = await factor.enroll(admin);
  t.match(uri, /^otpauth:\/\/totp\//);
  t.equal(await factor.required("revoke"), true, "auto: on after the first enrollment");
  await t.rejects(factor.enroll(admin), { code: "conflict" }, "a second enrollment needs replace");
  const file = await readFile(join(dir, "state", "admin-otp.json"), "utf8");
  t.notMatch(file, base32(secret), "the secret is not in the file in clear");
  t.notMatch(file, Buffer.from(secret).toString("base64"));

  await t.rejects(call(undefined), { code: "otp-required" });
  await t.rejects(call(hotp(secret, totpStep(now))!, "spiffe://postern.local/admin/other"), { code: "otp-required" }, "an admin who never enrolled");
  await t.rejects(call("000000" === hotp(secret, totpStep(now)) ? "111111" : "000000"), { code: "otp-invalid" });
  await call(hotp(secret, totpStep(now)));
  await t.rejects(call(hotp(secret, totpStep(now))), { code: "otp-reused" });
  await t.rejects(call(hotp(secret, totpStep(now) - 1)), { code: "otp-reused" }, "an older step is spent too");
  // Three failures within the window: even the right code is refused until they age out.
  const next = hotp(secret, totpStep(now) + 1);
  const limited = await call(next).then(() => undefined, (e: unknown) => e);
  t.ok(limited instanceof PosternError && limited.code === "rate-limited", "rate-limited after maxFailures");
  t.type((limited as PosternError).extensions.retryAfterSeconds, "number");
  now += 61_000;
  await call(hotp(secret, totpStep(now)));

  const lines = (await readFile(join(dir, "audit.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l) as { action: string; details: { code?: string } });
  t.same(lines.map((l) => l.action === "admin.otp.refused" ? `refused:${l.details.code}` : l.action), [
    "admin.otp.enroll", "refused:otp-required", "refused:otp-required", "refused:otp-invalid", "admin.otp.accepted", "refused:otp-reused", "refused:otp-reused", "admin.otp.accepted",
  ]);

  const off = new AdminSecondFactor({ path: join(dir, "state", "admin-otp.json"), passphrase: "correct horse", policy: { ...policy, actions: [...policy.actions], mode: "off" } });
  t.equal(await off.required("revoke"), false, "off: never");
  const some = new AdminSecondFactor({ path: join(dir, "state", "admin-otp.json"), passphrase: "correct horse", policy: { ...policy, actions: ["issue"] } });
  t.equal(await some.required("revoke"), false, "an action left out of admin.otp.actions");
  const wrongPassphrase = new AdminSecondFactor({ path: join(dir, "state", "admin-otp.json"), passphrase: "other", policy: { ...policy, actions: [...policy.actions] }, now: () => now });
  await t.rejects(wrongPassphrase.verify({ identity: admin, code: hotp(secret, totpStep(now) + 1), action: "revoke", subject: "/" }), { code: "internal" });
});
