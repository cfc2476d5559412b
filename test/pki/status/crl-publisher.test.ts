import t, { type Test } from "tap";
import { mkdtempSync, rmSync } from "node:fs";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, createServer, type TLSSocket } from "node:tls";
import { buildRootCrl } from "../../../src/pki/status/crl.js";
import { CrlPublisher, type CrlTimers } from "../../../src/pki/status/crl-publisher.js";
import { FileStore } from "../../../src/pki/store/file-store.js";
import type { PkiStore, RevokedEntry } from "../../../src/pki/store/store.js";
import { mintTestPki, type TestLeaf, type TestPki } from "./crl-fixture.js";
import { certRecord, waitFor } from "../store/store-contract.js";

const HOUR = 3600_000;

class FakeTimers implements CrlTimers {
  pending: { fn: () => void; delayMs: number }[] = [];
  set(fn: () => void, delayMs: number) {
    const entry = { fn, delayMs };
    this.pending.push(entry);
    return entry;
  }
  clear(handle: unknown) {
    this.pending = this.pending.filter((p) => p !== handle);
  }
  fire() {
    const next = this.pending.shift();
    next?.fn();
    return next?.delayMs;
  }
}

async function setup(t: Test) {
  const pki = await mintTestPki("P-256");
  const dir = mkdtempSync(join(tmpdir(), "postern-crlpub-"));
  const store = await FileStore.open(dir);
  t.teardown(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    pki.cleanup();
  });
  const root = buildRootCrl({ root: pki.root, crlNumber: 1n, nowMs: Date.now() });
  return { pki, store, rootCrlPem: root.pem };
}

async function storeLeaf(store: PkiStore, leaf: TestLeaf) {
  await store.putCertificate(certRecord(leaf.serial, { pem: leaf.pem }));
}

t.test("starts, rebuilds on each revocation with a higher cRLNumber, and on schedule", async (t) => {
  const { pki, store, rootCrlPem } = await setup(t);
  const leaf = await pki.issueLeaf();
  await storeLeaf(store, leaf);
  let now = Date.UTC(2031, 5, 1);
  const timers = new FakeTimers();
  const published: bigint[] = [];
  const pub = new CrlPublisher({
    issuer: pki.issuing, store, rootCrlPem, now: () => now, timers,
    onPublished: (c) => published.push(c.crlNumber),
  });
  t.throws(() => pub.crlPemsForTls(), { code: "internal" }, "no CRL yet: fail closed");
  const first = await pub.start();
  t.equal(first.entryCount, 0);
  t.equal(first.nextUpdateMs - first.thisUpdateMs, 24 * HOUR);
  t.equal(pub.nextUpdateMs, first.nextUpdateMs);
  t.same(timers.pending.map((p) => p.delayMs), [6 * HOUR - 60_000], "next rebuild a quarter of the validity after thisUpdate (backdated 60 s)");

  await store.revoke(leaf.serial, "keyCompromise", now);
  await waitFor(() => pub.current?.entryCount === 1);
  t.ok((pub.current?.crlNumber ?? 0n) > first.crlNumber);
  t.equal(timers.pending.length, 1, "one timer, re-armed");

  now += 6 * HOUR;
  timers.fire();
  await waitFor(() => published.length === 3);
  t.equal(pub.current?.thisUpdateMs, Math.floor((now - 60_000) / 1000) * 1000);
  t.ok(published.every((n, i) => i === 0 || n > (published[i - 1] ?? 0n)));
  const pems = pub.crlPemsForTls();
  t.equal(pems.length, 2);
  t.equal(pems[1], rootCrlPem);
  await pub.stop();
  t.same(timers.pending, []);
});

t.test("a failed rebuild keeps the last CRL and retries soon", async (t) => {
  const { pki, store, rootCrlPem } = await setup(t);
  const timers = new FakeTimers();
  let fail = false;
  const flaky = {
    listRevoked: () => (fail ? Promise.reject(new Error("store down")) : store.listRevoked()),
    getCrlState: () => store.getCrlState(),
    putCrlState: (crl: Parameters<PkiStore["putCrlState"]>[0]) => store.putCrlState(crl),
    subscribeRevocations: (fn: Parameters<PkiStore["subscribeRevocations"]>[0]) => store.subscribeRevocations(fn),
  };
  const errors: unknown[] = [];
  const pub = new CrlPublisher({ issuer: pki.issuing, store: flaky, rootCrlPem, timers, retryMs: 30_000, onError: (e) => errors.push(e) });
  const first = await pub.start();
  fail = true;
  await t.rejects(pub.rebuild());
  t.equal(pub.current, first);
  t.equal(errors.length, 1);
  t.same(timers.pending.map((p) => p.delayMs), [30_000]);
  fail = false;
  timers.fire();
  await waitFor(() => timers.pending.length === 1 && timers.pending[0]!.delayMs !== 30_000);
  t.equal(pub.current, first, "the retry found nothing changed: the same CRL, no new number");
  t.equal(errors.length, 1);
  await pub.stop();
});

t.test("Node TLS with crlPemsForTls(): valid client in, revoked client out with CERT_REVOKED", async (t) => {
  const { pki, store, rootCrlPem } = await setup(t);
  const server = await pki.issueLeaf(undefined, { server: true });
  const good = await pki.issueLeaf();
  const bad = await pki.issueLeaf();
  await storeLeaf(store, good);
  await storeLeaf(store, bad);
  await store.revoke(bad.serial, "keyCompromise", Date.now() - 1000);
  const pub = new CrlPublisher({ issuer: pki.issuing, store, rootCrlPem });
  await pub.start();
  t.teardown(() => pub.stop());
  const results = await handshakeResults(pki, server, pub.crlPemsForTls(), [good, bad]);
  t.same(results, [
    { authorized: true, error: null },
    { authorized: false, error: "CERT_REVOKED" },
  ]);
  const issuingOnly = await handshakeResults(pki, server, [pub.current?.pem ?? ""], [good]);
  t.same(issuingOnly, [{ authorized: false, error: "UNABLE_TO_GET_CRL" }], "why the root CRL is included (pitfall 2)");
});

async function handshakeResults(pki: TestPki, server: TestLeaf, crl: string[], clients: TestLeaf[]) {
  const ca = [pki.root.pem, pki.issuing.pem];
  const seen: { authorized: boolean; error: string | null }[] = [];
  const srv = createServer({ cert: `${server.pem}\n${pki.issuing.pem}`, key: server.keyPem, ca, crl, requestCert: true, rejectUnauthorized: false }, (s: TLSSocket) => {
    const err = s.authorizationError as unknown as Error | string | null;
    seen.push({ authorized: s.authorized, error: err === null ? null : typeof err === "string" ? err : ((err as { code?: string }).code ?? String(err)) });
    s.end();
  });
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const port = (srv.address() as { port: number }).port;
  for (const c of clients) {
    const sock = connect({ host: "127.0.0.1", port, ca, cert: `${c.pem}\n${pki.issuing.pem}`, key: c.keyPem, servername: "localhost" });
    sock.on("error", () => undefined);
    sock.resume();
    await once(sock, "close");
  }
  srv.close();
  return seen;
}

/** A ledger in memory, as the trust ledger gives it to the publisher. */
function memoryLedger(revocations: RevokedEntry[] = [], highWater = 0n) {
  const ledger = {
    revocations: () => revocations,
    highWater: () => highWater,
    recorded: [] as bigint[],
    recordCrlNumber: async (n: bigint) => {
      ledger.recorded.push(n);
      if (n > highWater) highWater = n;
    },
  };
  return ledger;
}

t.test("two replicas on one store publish the same CRL: one signs, the other serves its bytes", async (t) => {
  const { pki, store, rootCrlPem } = await setup(t);
  const leaf = await pki.issueLeaf();
  await storeLeaf(store, leaf);
  const a = new CrlPublisher({ issuer: pki.issuing, store, rootCrlPem });
  const b = new CrlPublisher({ issuer: pki.issuing, store, rootCrlPem });
  t.teardown(async () => {
    await a.stop();
    await b.stop();
  });
  const [first, second] = [await a.start(), await b.start()];
  t.equal(second.crlNumber, first.crlNumber);
  t.same(Buffer.from(second.der), Buffer.from(first.der), "same bytes");
  await store.revoke(leaf.serial, "keyCompromise", Date.now());
  await waitFor(() => a.current?.entryCount === 1 && b.current?.entryCount === 1);
  t.equal(a.current?.crlNumber, b.current?.crlNumber, "one number after a revocation");
  t.same(Buffer.from(a.current!.der), Buffer.from(b.current!.der));
  t.ok(a.current!.crlNumber > first.crlNumber);
});

t.test("a number is above the ledger's high-water mark and reaches the ledger first; ledger revocations stay listed", async (t) => {
  const { pki, store, rootCrlPem } = await setup(t);
  const lost = await pki.issueLeaf();
  const ledger = memoryLedger([{ serial: lost.serial, reason: "keyCompromise", revokedAtMs: Date.now() - 1000 }], 41n);
  const pub = new CrlPublisher({ issuer: pki.issuing, store, rootCrlPem, ledger });
  t.teardown(() => pub.stop());
  const crl = await pub.start();
  t.equal(crl.crlNumber, 42n, "the store had none; the ledger had 41");
  t.same(ledger.recorded, [42n], "recorded before it was published");
  t.equal(crl.entryCount, 1, "the revocation only the ledger knows is listed");
  t.equal((await store.getCrlState())?.crlNumber, 42n);
});

t.test("thisUpdate is never earlier than a revocation the CRL lists; latest() picks up a newer stored CRL", async (t) => {
  const { pki, store, rootCrlPem } = await setup(t);
  const leaf = await pki.issueLeaf();
  await storeLeaf(store, leaf);
  const now = Date.now();
  await store.revoke(leaf.serial, "unspecified", now + 30_000); // a replica with a fast clock
  const pub = new CrlPublisher({ issuer: pki.issuing, store, rootCrlPem, now: () => now, syncIntervalMs: 0 });
  t.teardown(() => pub.stop());
  const crl = await pub.start();
  t.ok(crl.thisUpdateMs >= Math.floor((now + 30_000) / 1000) * 1000, "thisUpdate >= the revocation date");
  const other = new CrlPublisher({ issuer: pki.issuing, store, rootCrlPem, now: () => now + 7 * HOUR });
  t.teardown(() => other.stop());
  const newer = await other.rebuild(); // due: a new number, stored
  t.ok(newer.crlNumber > crl.crlNumber);
  t.equal((await pub.latest())?.crlNumber, newer.crlNumber, "the first replica serves the newer one when asked");
});
