/**
 * The PkiStore contract, run against every adapter (store-file.test.ts, store-redis.test.ts).
 * Each subtest gets a fresh, empty store from `open`.
 */
import type { Test } from "tap";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import type { CertificateRecord, EnrollmentTokenRecord, PkiStore, RevokedEntry } from "../../../src/pki/store/store.js";

export interface StoreHarness {
  store: PkiStore;
  /** Closes and reopens the same underlying state, when the adapter is persistent. */
  reopen: () => Promise<PkiStore>;
}

const HOUR = 3600_000;
const T0 = Date.UTC(2030, 0, 1);

export function certRecord(serial: string, over: Partial<CertificateRecord> = {}): CertificateRecord {
  return {
    serial,
    identity: "spiffe://org/service/a",
    roles: ["client"],
    fingerprint: createHash("sha256").update(serial).digest("base64url"),
    notBeforeMs: T0,
    notAfterMs: T0 + 24 * HOUR,
    issuedAtMs: T0,
    pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    status: "valid",
    profile: "default",
    ...over,
  };
}

export function tokenRecord(over: Partial<EnrollmentTokenRecord> = {}): EnrollmentTokenRecord {
  return {
    tokenHash: createHash("sha256").update(randomBytes(16)).digest("hex"),
    identity: "spiffe://org/service/new",
    roles: ["client"],
    expiresAtMs: T0 + HOUR,
    createdAtMs: T0,
    ...over,
  };
}

const serialOf = (i: number) => (0x1000 + i).toString(16).padStart(6, "0");

async function collectAll(store: PkiStore, filter: Parameters<PkiStore["listCertificates"]>[0]): Promise<{ serials: string[]; pages: number }> {
  const serials: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await store.listCertificates({ ...filter, cursor });
    pages++;
    serials.push(...page.items.map((r) => r.serial));
    cursor = page.nextCursor;
  } while (cursor !== undefined && pages < 1000);
  return { serials, pages };
}

/** Registers the contract subtests on `t`. */
export function runStoreContract(t: Test, open: () => Promise<StoreHarness>): void {
  const withStore = (name: string, fn: (t: Test, h: StoreHarness) => Promise<void>) =>
    t.test(name, async (t) => {
      const h = await open();
      t.teardown(() => h.store.close());
      await fn(t, h);
    });

  withStore("put then get returns the record; unknown serial is undefined", async (t, { store }) => {
    const rec = certRecord("00ff01");
    await store.putCertificate(rec);
    t.same(await store.getCertificate("00ff01"), rec);
    t.same(await store.getCertificate("00FF01"), rec, "serial lookup is case-insensitive");
    t.equal(await store.getCertificate("0abc"), undefined);
  });

  withStore("re-putting the same certificate is idempotent, another one with its serial conflicts", async (t, { store }) => {
    await store.putCertificate(certRecord("0a01"));
    await store.putCertificate(certRecord("0a01"));
    await t.rejects(store.putCertificate(certRecord("0a01", { fingerprint: "other" })), { code: "conflict" });
    await t.rejects(store.putCertificate(certRecord("xyz")), { code: "bad-request" });
    await t.rejects(store.putCertificate(certRecord("0a02", { status: "revoked" })), { code: "bad-request" });
  });

  withStore("list pages through everything exactly once; filters combine with paging", async (t, { store }) => {
    for (let i = 0; i < 25; i++) {
      await store.putCertificate(certRecord(serialOf(i), {
        identity: i % 2 === 0 ? "spiffe://org/even" : "spiffe://org/odd",
        notAfterMs: T0 + i * HOUR,
      }));
    }
    for (const i of [1, 2, 3]) await store.revoke(serialOf(i), "keyCompromise", T0 + 5);
    const all = await collectAll(store, { limit: 10 });
    t.equal(all.pages, 3);
    t.same([...all.serials].sort(), Array.from({ length: 25 }, (_, i) => serialOf(i)).sort());
    const first = await store.listCertificates({ limit: 10 });
    t.equal(first.items.length, 10);
    t.ok(first.nextCursor);
    const even = await collectAll(store, { identity: "spiffe://org/even", limit: 4 });
    t.equal(even.serials.length, 13);
    const revoked = await collectAll(store, { status: "revoked", limit: 2 });
    t.same(revoked.serials.sort(), [1, 2, 3].map(serialOf).sort());
    const valid = await collectAll(store, { status: "valid", limit: 7 });
    t.equal(valid.serials.length, 22);
    const expiring = await collectAll(store, { expiringBeforeMs: T0 + 5 * HOUR, limit: 3 });
    t.same(expiring.serials.sort(), [0, 1, 2, 3, 4].map(serialOf).sort());
    const oddRevoked = await collectAll(store, { identity: "spiffe://org/odd", status: "revoked" });
    t.same(oddRevoked.serials.sort(), [1, 3].map(serialOf).sort());
    t.same(await store.listCertificates({ identity: "nobody" }), { items: [] });
    const capped = await store.listCertificates({ limit: 5000 });
    t.equal(capped.items.length, 25, "limit above 1000 is clamped, not refused");
    await t.rejects(store.listCertificates({ cursor: "not-a-cursor" }), { code: "bad-request" });
    await t.rejects(store.listCertificates({ limit: 0 }), { code: "bad-request" });
  });

  withStore("revoke is idempotent: first time and reason win; unknown serial is undefined", async (t, { store }) => {
    await store.putCertificate(certRecord("0b01"));
    const first = await store.revoke("0b01", "keyCompromise", T0 + 10);
    t.equal(first?.status, "revoked");
    t.equal(first?.revokedAtMs, T0 + 10);
    const second = await store.revoke("0B01", "superseded", T0 + 99);
    t.equal(second?.revocationReason, "keyCompromise");
    t.equal(second?.revokedAtMs, T0 + 10);
    t.equal((await store.getCertificate("0b01"))?.status, "revoked");
    t.same(await store.listRevoked(), [{ serial: "0b01", revokedAtMs: T0 + 10, reason: "keyCompromise" }]);
    t.equal(await store.revoke("0b02", "keyCompromise", T0), undefined);
    await t.rejects(store.revoke("0b01", "nonsense" as never, T0), { code: "bad-request" });
  });

  withStore("concurrent revokes of one serial: one revocation, one event", async (t, { store }) => {
    await store.putCertificate(certRecord("0c01"));
    const seen: RevokedEntry[] = [];
    const unsubscribe = await store.subscribeRevocations((e) => seen.push(e));
    const results = await Promise.all(
      ["unspecified", "keyCompromise", "superseded", "affiliationChanged"].map((r, i) => store.revoke("0c01", r as never, T0 + i)),
    );
    t.equal(new Set(results.map((r) => `${r?.revokedAtMs}/${r?.revocationReason}`)).size, 1);
    await waitFor(() => seen.length >= 1);
    await new Promise((r) => setTimeout(r, 100));
    t.equal(seen.length, 1);
    t.equal((await store.listRevoked()).length, 1);
    await unsubscribe();
  });

  withStore("a token is consumed once, even by 50 concurrent consumers", async (t, { store }) => {
    const tok = tokenRecord();
    await store.putToken(tok);
    await t.rejects(store.putToken(tok), { code: "conflict" });
    const results = await Promise.all(Array.from({ length: 50 }, () => store.consumeToken(tok.tokenHash, T0)));
    const winners = results.filter((r) => r !== undefined);
    t.equal(winners.length, 1);
    t.same(winners[0], tok);
    t.equal(await store.consumeToken(tok.tokenHash, T0), undefined);
    t.equal(await store.consumeToken("not-a-hash", T0), undefined);
    t.equal(await store.consumeToken("0".repeat(64), T0), undefined);
  });

  withStore("an expired token is refused, and stays refused", async (t, { store }) => {
    const tok = tokenRecord({ expiresAtMs: Date.now() + HOUR });
    await store.putToken(tok);
    t.equal(await store.consumeToken(tok.tokenHash, tok.expiresAtMs), undefined, "refused at expiry");
    t.equal(await store.consumeToken(tok.tokenHash, tok.expiresAtMs - 1), undefined, "and gone afterwards");
    const past = tokenRecord({ expiresAtMs: Date.now() - HOUR });
    await store.putToken(past);
    t.equal(await store.consumeToken(past.tokenHash, Date.now()), undefined);
  });

  withStore("the CRL state only moves up: the first writer of a number wins, across reopen", async (t, h) => {
    t.equal(await h.store.getCrlState(), undefined, "nothing stored at first");
    const crl = (n: bigint, digest = "d") => ({ crlNumber: n, thisUpdateMs: T0, nextUpdateMs: T0 + HOUR, digest, der: Uint8Array.of(0x30, Number(n)) });
    const stored = await h.store.putCrlState(crl(3n));
    t.equal(stored.crlNumber, 3n);
    t.same([...(stored.der ?? [])], [0x30, 3]);
    t.equal((await h.store.putCrlState(crl(2n, "older"))).crlNumber, 3n, "a lower number never replaces a higher one");
    t.equal((await h.store.putCrlState(crl(3n, "other"))).digest, "d", "nor does the same number");
    const racers = await Promise.all(Array.from({ length: 10 }, (_, i) => h.store.putCrlState(crl(4n, `racer-${i}`))));
    t.equal(new Set(racers.map((r) => r.digest)).size, 1, "concurrent writers of one number all see the same winner");
    const after = await h.store.getCrlState();
    t.equal(after?.crlNumber, 4n);
    t.equal(after?.digest, racers[0]?.digest);
    t.equal(after?.thisUpdateMs, T0);
    t.equal(after?.nextUpdateMs, T0 + HOUR);
    const light = await h.store.getCrlState({ withDer: false });
    t.equal(light?.crlNumber, 4n);
    t.equal(light?.der, undefined, "withDer: false leaves the DER out");
    h.store = await h.reopen();
    t.ok(((await h.store.getCrlState())?.crlNumber ?? 0n) >= 4n, "the number survives reopen");
    t.equal((await h.store.putCrlState(crl(4n, "again"))).crlNumber, 4n);
  });

  withStore("missingCertificates and counts see exactly what is stored", async (t, { store }) => {
    await store.putCertificate(certRecord("0f11"));
    await store.putCertificate(certRecord("0f12"));
    await store.revoke("0f12", "keyCompromise", T0);
    t.same(await store.missingCertificates(["0f11", "0f13", "0F12", "0f14"]), ["0f13", "0f14"]);
    t.same(await store.missingCertificates([]), []);
    t.same(await store.counts(), { certificates: 2, revoked: 1 });
  });

  withStore("peekToken reads without spending; failToken counts and deletes at the limit", async (t, { store }) => {
    const tok = tokenRecord({ expiresAtMs: Date.now() + HOUR });
    await store.putToken(tok);
    t.same(await store.peekToken(tok.tokenHash, Date.now()), tok);
    t.same(await store.peekToken(tok.tokenHash, Date.now()), tok, "still there");
    t.equal(await store.peekToken(tok.tokenHash, tok.expiresAtMs), undefined, "expired at expiry");
    t.equal(await store.peekToken("not-a-hash", Date.now()), undefined);
    t.equal(await store.failToken(tok.tokenHash, 3), 1);
    t.equal((await store.peekToken(tok.tokenHash, Date.now()))?.failures, 1);
    const concurrent = await Promise.all([store.failToken(tok.tokenHash, 3), store.failToken(tok.tokenHash, 3)]);
    t.same(concurrent.sort(), [2, 3], "each failure counted once");
    t.equal(await store.peekToken(tok.tokenHash, Date.now()), undefined, "deleted at the limit");
    t.equal(await store.consumeToken(tok.tokenHash, Date.now()), undefined);
    t.equal(await store.failToken(tok.tokenHash, 3), 0, "unknown token: 0");
  });

  withStore("listTokens lists live tokens only, without the consumed ones", async (t, { store }) => {
    const now = Date.now();
    const live = tokenRecord({ expiresAtMs: now + HOUR });
    const spent = tokenRecord({ expiresAtMs: now + HOUR });
    const old = tokenRecord({ expiresAtMs: now - HOUR });
    for (const tok of [live, spent, old]) await store.putToken(tok);
    await store.consumeToken(spent.tokenHash, now);
    await store.failToken(live.tokenHash, 5);
    t.same(await store.listTokens(now), [{ ...live, failures: 1 }]);
  });

  withStore("state survives reopen: certificates, revocations, consumed tokens", async (t, h) => {
    await h.store.putCertificate(certRecord("0d01"));
    await h.store.putCertificate(certRecord("0d02"));
    await h.store.revoke("0d02", "cessationOfOperation", T0 + 1);
    const used = tokenRecord();
    const kept = tokenRecord();
    await h.store.putToken(used);
    await h.store.putToken(kept);
    t.ok(await h.store.consumeToken(used.tokenHash, T0));
    h.store = await h.reopen();
    t.equal((await h.store.getCertificate("0d01"))?.status, "valid");
    t.equal((await h.store.getCertificate("0d02"))?.revocationReason, "cessationOfOperation");
    t.equal(await h.store.consumeToken(used.tokenHash, T0), undefined);
    t.same(await h.store.consumeToken(kept.tokenHash, T0), kept);
  });

  withStore("revocation subscription fires for new revocations only, and stops after unsubscribe", async (t, { store }) => {
    await store.putCertificate(certRecord("0e01"));
    await store.putCertificate(certRecord("0e02"));
    const seen: RevokedEntry[] = [];
    const unsubscribe = await store.subscribeRevocations((e) => seen.push(e));
    await store.revoke("0e01", "keyCompromise", T0 + 7);
    await waitFor(() => seen.length === 1);
    t.same(seen[0], { serial: "0e01", revokedAtMs: T0 + 7, reason: "keyCompromise" });
    await store.revoke("0e01", "keyCompromise", T0 + 8);
    await store.putCertificate(certRecord("0e03", { status: "revoked", revokedAtMs: T0, revocationReason: "superseded" }));
    await waitFor(() => seen.length === 2);
    t.equal(seen[1]?.serial, "0e03", "importing a revoked record announces it");
    await unsubscribe();
    await store.revoke("0e02", "superseded", T0 + 9);
    await new Promise((r) => setTimeout(r, 150));
    t.equal(seen.length, 2);
    t.equal((await store.listRevoked()).length, 3);
  });

}

/** Polls `cond` every 10 ms for up to 5 s (pub/sub delivery is asynchronous). */
export async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Runs store-crash-child, SIGKILLs it once `pattern` matched `count` times, returns acked lines. */
export async function runAndKill(mode: string, dir: string, pattern: RegExp, count: number): Promise<string[]> {
  const script = fileURLToPath(new URL("./store-crash-child.ts", import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", script, mode, dir], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.once("exit", () => reject(new Error("child exited early")));
    const check = setInterval(() => {
      if ((out.match(pattern)?.length ?? 0) >= count) {
        clearInterval(check);
        resolve();
      }
    }, 10);
  });
  child.removeAllListeners("exit");
  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));
  return out.split("\n").slice(1, -1); // the last line may be cut mid-write
}
