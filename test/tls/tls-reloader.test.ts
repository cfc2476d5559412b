/**
 * The reloader's own rules, with a scripted `read` and a real directory watch: a refused
 * candidate keeps the material and is counted once per set of files (a signal always answers),
 * a listener that throws rolls every listener back, and only the watched names (and
 * Kubernetes' `..data` swap) start a reload.
 */
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import type { Logger } from "../../src/log.js";
import { noopRecorder, type MetricsRecorder } from "../../src/metrics/recorder.js";
import type { ServingCheck, ServingMaterial } from "../../src/pki/index.js";
import { TlsReloader } from "../../src/tls/index.js";

const material = (serial: string): ServingMaterial => ({
  serverCertChainPem: `chain ${serial}`,
  serverKeyPem: `key ${serial}`,
  caBundlePem: "bundle",
  serial,
  notAfterMs: 1_900_000_000_000,
  inputDigest: `digest ${serial}`,
});
const refusal = (digest: string): ServingCheck => ({ ok: false, inputDigest: digest, part: "server_key", file: "/pki/server.key", reason: "does not match" });

function harness(results: ServingCheck[], watchDir?: string) {
  const failures: string[] = [];
  const served: string[] = [];
  const reads: number[] = [];
  const metrics: MetricsRecorder = { ...noopRecorder, reloadFailed: (what) => void failures.push(what), servingCertificate: (serial) => void served.push(serial) };
  const log: Logger = { info() {}, warn() {}, error() {} };
  let index = 0;
  const reloader = new TlsReloader({
    initial: material("01"),
    read: async () => {
      reads.push(Date.now());
      return results[Math.min(index++, results.length - 1)]!;
    },
    watchDir,
    fileNames: ["server.crt", "server.key", "ca-bundle.pem"],
    debounceMs: 50,
    metrics,
    log,
  });
  return { reloader, failures, served, reads };
}

t.test("a refused candidate keeps the material; the watch counts the same files once, a signal every time", async (t) => {
  const { reloader, failures } = harness([refusal("a"), refusal("a"), refusal("a"), refusal("b")]);
  t.match(await reloader.reload("watch"), { status: "refused", serial: "01", part: "server_key", file: "/pki/server.key" });
  t.match(await reloader.reload("poll"), { status: "refused" });
  t.same(failures, ["server_key"], "the same files again: not counted twice");
  await reloader.reload("signal");
  t.same(failures, ["server_key", "server_key"], "a person's SIGHUP always gets its answer");
  await reloader.reload("watch");
  t.equal(failures.length, 3, "other broken files: counted");
  t.equal(reloader.current().serial, "01");
});

t.test("a good candidate is applied once; the same files again are unchanged", async (t) => {
  const { reloader, served } = harness([{ ok: true, material: material("02") }]);
  const applied: string[] = [];
  reloader.onApplied((m) => applied.push(m.serial));
  t.match(await reloader.reload("watch"), { status: "applied", serial: "02", previousSerial: "01" });
  t.match(await reloader.reload("signal"), { status: "unchanged", serial: "02" });
  t.same(applied, ["02"]);
  t.same(served, ["01", "02"], "the serving-certificate metric follows");
});

t.test("a listener that throws (OpenSSL refused the material) rolls every listener back and counts a failure", async (t) => {
  const { reloader, failures } = harness([{ ok: true, material: material("03") }]);
  const seen: string[] = [];
  reloader.onApplied((m) => seen.push(`first ${m.serial}`));
  reloader.onApplied((m) => {
    seen.push(`second ${m.serial}`);
    if (m.serial === "03") throw new Error("key values mismatch");
  });
  t.match(await reloader.reload("watch"), { status: "refused", serial: "01", reason: /OpenSSL: key values mismatch/ });
  t.same(seen, ["first 03", "second 03", "first 01", "second 01"]);
  t.equal(reloader.current().serial, "01");
  t.same(failures, ["server_certificate"]);
});

t.test("the watch reloads for the three names and a ..data swap, not for other files", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "postern-reloader-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { reloader, reads } = harness([{ ok: true, material: material("01") }], dir);
  reloader.start();
  t.teardown(() => reloader.stop());
  const settle = () => new Promise((resolve) => setTimeout(resolve, 500));
  await writeFile(join(dir, "audit.jsonl"), "x");
  await mkdir(join(dir, "store"));
  await settle();
  t.equal(reads.length, 0, "other files: no reload");
  await writeFile(join(dir, "server.key"), "a");
  await writeFile(join(dir, "server.crt"), "b");
  for (let i = 0; i < 100 && reads.length === 0; i++) await settle();
  t.ok(reads.length >= 1, "the certificate's names: a reload");
  await settle(); // any trailing reload of the pair's writes is over
  const afterPair = reads.length;
  await mkdir(join(dir, "..2026_12_01"));
  await symlink("..2026_12_01", join(dir, "..data_tmp"));
  await rename(join(dir, "..data_tmp"), join(dir, "..data"));
  for (let i = 0; i < 100 && reads.length === afterPair; i++) await settle();
  t.ok(reads.length > afterPair, "a Kubernetes ..data swap: a reload");
});
