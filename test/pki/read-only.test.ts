/**
 * A PKI directory Postern may not write (`pki.readOnly`, a pod's Secret): the plan starts from
 * exactly POD_PKI_FILES, never writes, and turns what a writable start would re-issue into a
 * warning (expiring, still valid) or an error naming the file.
 */
import t, { type Test } from "tap";
import { X509Certificate } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensurePki, planPki } from "../../src/pki/ca/bootstrap.js";
import { POD_PKI_FILES, PKI_FILES } from "../../src/pki/index.js";

t.setTimeout(120_000);

const PASSPHRASE = "read-only test passphrase";
const env = { POSTERN_CA_PASSPHRASE: PASSPHRASE };

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "postern-read-only-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A bootstrapped PKI (as `postern start` makes one) and a copy of just the pod's files. */
async function podCopy(t: Test, hostnames: string[] = ["gw.example"]): Promise<{ full: string; pod: string }> {
  const root = await tempDir(t);
  const full = join(root, "full");
  const pod = join(root, "pod");
  await ensurePki({ dir: full, hostnames, env });
  await mkdir(pod);
  for (const name of POD_PKI_FILES) await copyFile(join(full, name), join(pod, name));
  return { full, pod };
}

const serverNotAfter = async (dir: string) => Date.parse(new X509Certificate(await readFile(join(dir, "server.crt"))).validTo);

t.test("the pod's files are the CA certificates, issuing key, bundle, server pair and root CRL: no root key, client credentials or passphrase", async (t) => {
  t.same([...POD_PKI_FILES].sort(), ["ca-bundle.pem", "issuing-ca.crt", "issuing-ca.key", "root-ca.crl", "root-ca.crt", "server.crt", "server.key"]);
  for (const never of [PKI_FILES.rootKey, PKI_FILES.adminKey, PKI_FILES.adminCert, PKI_FILES.demoClientKey, PKI_FILES.demoClientCert, PKI_FILES.passphrase]) {
    t.notOk((POD_PKI_FILES as readonly string[]).includes(never), `${never} is not in a pod`);
  }
});

t.test("read-only: a plan from exactly the pod's files writes nothing and leaves the client certificates alone", async (t) => {
  const { full, pod } = await podCopy(t);
  const plan = await planPki({ dir: pod, hostnames: ["gw.example"], env, readOnly: true });
  t.same(plan.writes, []);
  t.same(plan.warnings, []);
  t.same(plan.certificates.map((c) => c.kind), ["root-ca", "issuing-ca", "server"]);
  t.equal(plan.material.serverCertChainPem, await readFile(join(full, "server.crt"), "utf8"), "the bootstrap's server certificate");
  t.same((await readdir(pod)).sort(), [...POD_PKI_FILES].sort());
  const writable = await planPki({ dir: pod, hostnames: ["gw.example"], env });
  t.ok(writable.writes.some((w) => w.path.endsWith("admin.key")), "the same directory, writable, would get client credentials");
});

t.test("read-only: each missing pod file is named, with the whole list", async (t) => {
  const { pod } = await podCopy(t);
  for (const name of POD_PKI_FILES) {
    const aside = join(pod, `${name}.aside`);
    await copyFile(join(pod, name), aside);
    await rm(join(pod, name));
    await t.rejects(planPki({ dir: pod, hostnames: ["gw.example"], env, readOnly: true }), {
      code: "not-found",
      message: new RegExp(`lacks ${name.replace(".", "\\.")}; a gateway pod needs exactly ${POD_PKI_FILES.join(", ").replaceAll(".", "\\.")}`),
    }, name);
    await copyFile(aside, join(pod, name));
    await rm(aside);
  }
});

t.test("read-only: a server certificate that expires within 7 days is kept with a warning; an expired one is refused by name", async (t) => {
  const { pod } = await podCopy(t);
  const notAfter = await serverNotAfter(pod);
  const soon = await planPki({ dir: pod, hostnames: ["gw.example"], env, readOnly: true, now: () => notAfter - 3 * 86_400_000 });
  t.same(soon.writes, []);
  t.match(soon.warnings, [new RegExp(`${join(pod, "server.crt").replaceAll(".", "\\.")} expires .* \\(in 3 day\\(s\\)\\); renew it .*postern pki reissue --only server`)]);
  const writable = await planPki({ dir: pod, hostnames: ["gw.example"], env, now: () => notAfter - 3 * 86_400_000 });
  t.ok(writable.certificates.some((c) => c.kind === "server" && c.issuedBecause === "expiring"), "a writable start would re-issue it");
  await t.rejects(planPki({ dir: pod, hostnames: ["gw.example"], env, readOnly: true, now: () => notAfter + 60_000 }), {
    code: "conflict",
    message: /server\.crt has expired .* Postern may not write the PKI directory/,
  });
});

t.test("read-only: a host name the server certificate lacks, a foreign server certificate, a mismatched bundle are refused by name", async (t) => {
  const { pod } = await podCopy(t);
  await t.rejects(planPki({ dir: pod, hostnames: ["gw.example", "other.example"], env, readOnly: true }), { code: "conflict", message: /server\.crt lacks a host name listed in pki\.hostnames/ });
  const other = await podCopy(t);
  await copyFile(join(other.pod, "server.crt"), join(pod, "server.crt"));
  await copyFile(join(other.pod, "server.key"), join(pod, "server.key"));
  await t.rejects(planPki({ dir: pod, hostnames: ["gw.example"], env, readOnly: true }), { code: "conflict", message: /server\.crt was not issued by this directory's issuing CA/ });
  const fresh = await podCopy(t);
  await writeFile(join(fresh.pod, "ca-bundle.pem"), await readFile(join(fresh.pod, "root-ca.crt")));
  await t.rejects(planPki({ dir: fresh.pod, hostnames: ["gw.example"], env, readOnly: true }), { code: "conflict", message: /ca-bundle\.pem is not issuing-ca\.crt followed by root-ca\.crt/ });
});

t.test("read-only: a root key that happens to be there signs no root CRL; a re-issue is refused", async (t) => {
  const { full, pod } = await podCopy(t);
  await copyFile(join(full, "root-ca.key"), join(pod, "root-ca.key"));
  const crlNextUpdate = Date.now() + 365 * 86_400_000;
  // Within 30 days of the root CRL's nextUpdate a writable start with the root key signs a new one.
  const late = () => crlNextUpdate - 10 * 86_400_000;
  const writable = await planPki({ dir: pod, hostnames: ["gw.example"], env, now: late });
  t.ok(writable.writes.some((w) => w.path.endsWith("root-ca.crl")), "writable: a new root CRL");
  const readOnly = await planPki({ dir: pod, hostnames: ["gw.example"], env, readOnly: true, now: late });
  t.same(readOnly.writes, []);
  t.match(readOnly.warnings.join("\n"), /root-ca\.crl expires/);
  await t.rejects(planPki({ dir: pod, hostnames: ["gw.example"], env, readOnly: true, reissue: ["server"] }), { code: "conflict", message: /pki\.readOnly is set/ });
});
