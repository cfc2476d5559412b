import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { certificateExpiries } from "../../src/pki/runtime.js";
import { FileStore } from "../../src/pki/store/file-store.js";
import { certRecord } from "./store/store-contract.js";

const HOUR = 3600_000;
const NOW = Date.UTC(2030, 5, 1);

t.test("earliest_certificate counts valid, unrevoked certificates only; expired-unrevoked are counted apart", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "postern-expiries-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = await FileStore.open(dir);
  t.same(await certificateExpiries(store, NOW), { earliestValidMs: NOW + 365 * 24 * HOUR, expiredUnrevoked: 0 }, "none issued: a year ahead, none expired");

  await store.putCertificate(certRecord("0c01", { notBeforeMs: NOW - 48 * HOUR, notAfterMs: NOW - 24 * HOUR })); // expired
  await store.putCertificate(certRecord("0c02", { notBeforeMs: NOW - 48 * HOUR, notAfterMs: NOW })); // expires exactly now
  await store.putCertificate(certRecord("0c03", { notBeforeMs: NOW - HOUR, notAfterMs: NOW + 2 * HOUR })); // revoked below
  await store.putCertificate(certRecord("0c04", { notBeforeMs: NOW - HOUR, notAfterMs: NOW + 5 * HOUR }));
  await store.putCertificate(certRecord("0c05", { notBeforeMs: NOW - HOUR, notAfterMs: NOW + 9 * HOUR }));
  await store.revoke("0c03", "keyCompromise", NOW - 1000);
  t.same(await certificateExpiries(store, NOW), { earliestValidMs: NOW + 5 * HOUR, expiredUnrevoked: 2 });

  // A revoked expired certificate counts in neither.
  await store.revoke("0c01", "superseded", NOW);
  t.same(await certificateExpiries(store, NOW), { earliestValidMs: NOW + 5 * HOUR, expiredUnrevoked: 1 });

  // Time passes: the 5-hour one lapses and the countdown moves on.
  t.same(await certificateExpiries(store, NOW + 6 * HOUR), { earliestValidMs: NOW + 9 * HOUR, expiredUnrevoked: 2 });
  await store.close();
});
