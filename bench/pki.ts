import { spawnSync } from "node:child_process";
import { X509Certificate, KeyObject, generateKeyPairSync, sign, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { initCa, type InitCaResult } from "../src/pki/ca/ca.js";
import { TAG, bitString, children, ctx, oid, readOne, seq, set, tlv, uint, type Bytes, type DerNode } from "../src/pki/der/der.js";
import { buildCrl, CrlEntryCache } from "../src/pki/status/crl.js";
import { issueFromCsrNow, parseCsr, validateCsr } from "../src/pki/issue/csr.js";
import { issueLeafDer } from "../src/pki/issue/issue.js";
import { encodeName, subjectAltName } from "../src/pki/issue/tbs.js";
import { DEFAULT_CLIENT_PROFILE, lifetimeFor } from "../src/pki/issue/profile.js";
import type { RevokedEntry } from "../src/pki/store/store.js";
import { x509 } from "../src/pki/der/x509.js";
import { measure, report, type Measurement } from "./measure.js";
import type { PkiWorkerInit, PkiWorkerReply, PkiWorkerRequest } from "./pki-worker.js";

type CaKind = "P-256" | "Ed25519";

const CSR_COUNT = 2_000;
const WORKERS = 2;
const POOL_SECONDS = 2.5;
const PASSPHRASE = "postern bench passphrase";
const EXTENSION_REQUEST = "1.2.840.113549.1.9.14";

/**
 * PKI costs, each against a baseline measured in the same run:
 * 1. CSR -> certificate (parse, verify, validate against the default client profile, issue,
 *    sign) against the bare CA signature over a TBS-sized buffer, with @peculiar/x509 for contrast;
 * 2. the same through a pool of worker threads, each holding the CA;
 * 3. CRL builds at 10k / 100k entries (cold, and rebuilt through CrlEntryCache after one more
 *    revocation) against the bare signature over the TBSCertList, with `openssl verify -crl_check`.
 */
export async function benchPki(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "postern-bench-pki-"));
  try {
    const cas = new Map<CaKind, { ca: InitCaResult; dir: string; csrs: Bytes[] }>();
    for (const kind of ["P-256", "Ed25519"] as const) {
      const caDir = join(dir, kind);
      const ca = await initCa({ dir: caDir, keyAlgorithm: kind, passphrase: PASSPHRASE });
      cas.set(kind, { ca, dir: caDir, csrs: Array.from({ length: CSR_COUNT }, (_, i) => makeCsr(kind, i)) });
    }
    const single = new Map<CaKind, Measurement>();
    for (const [kind, { ca, csrs }] of cas) single.set(kind, await benchInline(kind, ca, csrs));
    for (const [kind, { dir: caDir, csrs, ca }] of cas) await benchPool(kind, caDir, ca, csrs, single.get(kind));
    const p256 = cas.get("P-256");
    if (p256) await benchCrl(dir, p256.ca);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A PKCS#10 request with a fresh key of `kind`: CN=bench-i, OU=client, SAN URI spiffe://postern.local/client/bench-i. */
function makeCsr(kind: CaKind, i: number): Bytes {
  const { privateKey, publicKey } = kind === "P-256" ? generateKeyPairSync("ec", { namedCurve: "P-256" }) : generateKeyPairSync("ed25519");
  const san = subjectAltName({ uris: [`spiffe://postern.local/client/bench-${i}`] });
  if (!san) throw new Error("no SAN");
  const info = seq(
    uint(0),
    encodeName({ organizationalUnits: ["client"], commonName: `bench-${i}` }),
    new Uint8Array(publicKey.export({ format: "der", type: "spki" })),
    tlv(ctx(0, true), seq(oid(EXTENSION_REQUEST), set(seq(san)))),
  );
  const algorithm = kind === "P-256" ? seq(oid("1.2.840.10045.4.3.2")) : seq(oid("1.3.101.112"));
  const signature = sign(kind === "P-256" ? "sha256" : null, info, privateKey);
  return seq(info, algorithm, bitString(signature));
}

/** The TBSCertificate (or TBSCertList) element of a signed DER structure. */
function tbsOf(der: Uint8Array): DerNode {
  const [tbs] = children(readOne(der, TAG.sequence));
  if (!tbs) throw new Error("no TBS");
  return tbs;
}

/** Checks a leaf with node's X509Certificate: signed by the issuing CA, for the right identity. */
function checkLeaf(der: Uint8Array, ca: InitCaResult, what: string): void {
  const leaf = new X509Certificate(der);
  const issuing = new X509Certificate(ca.issuingCertPem);
  if (!leaf.checkIssued(issuing) || !leaf.verify(issuing.publicKey) || !/URI:spiffe:\/\/postern\.local\/client\/bench-/.test(leaf.subjectAltName ?? "")) {
    throw new Error(`${what}: the issued certificate does not check out`);
  }
}

async function benchInline(kind: CaKind, ca: InitCaResult, csrs: Bytes[]): Promise<Measurement> {
  const issuer = ca.issuer;
  const key = KeyObject.from(issuer.privateKey);
  const hash = kind === "P-256" ? "sha256" : null;
  const sample = issueFromCsrNow({ issuer, csrPem: csrs[0] as Bytes, profile: DEFAULT_CLIENT_PROFILE });
  checkLeaf(sample.der, ca, `issueFromCsrNow ${kind}`);
  const tbs = randomBytes(tbsOf(sample.der).bytes.length);
  const parsed = csrs.map((c) => parseCsr(c));
  const lifetimeSeconds = lifetimeFor(DEFAULT_CLIENT_PROFILE);
  let i = 0;
  const next = (): Bytes => csrs[i++ % csrs.length] as Bytes;

  const baseline = await measure(`bare crypto.sign ${kind}, ${tbs.length} B TBS (baseline)`, () => sign(hash, tbs, key), 1);
  const parseOnly = await measure(`  parseCsr (DER walk + self-signature verify)`, () => parseCsr(next()), 1);
  const issueOnly = await measure(`  issueLeafDer from a parsed CSR (TBS + sign)`, () => {
    const csr = parsed[i++ % parsed.length];
    if (!csr) throw new Error("no CSR");
    const names = validateCsr(csr, DEFAULT_CLIENT_PROFILE);
    return issueLeafDer({ issuer, spki: csr.spki, ...names, lifetimeSeconds, usage: "client" });
  }, 1);
  const full = await measure(`issueFromCsrNow ${kind} CA (parse+validate+issue+sign)`, () =>
    issueFromCsrNow({ issuer, csrPem: next(), profile: DEFAULT_CLIENT_PROFILE }), 1.5);

  const signingAlgorithm = kind === "P-256" ? ({ name: "ECDSA", hash: "SHA-256" } as EcdsaParams) : { name: "Ed25519" };
  const caCert = issuer.cert;
  const x509Issue = async (): Promise<x509.X509Certificate> => {
    const req = new x509.Pkcs10CertificateRequest(next());
    if (!(await req.verify())) throw new Error("CSR signature");
    const san = req.getExtension("2.5.29.17");
    const now = Date.now();
    return x509.X509CertificateGenerator.create({
      serialNumber: randomBytes(16).toString("hex").replace(/^./, "7"),
      subject: req.subjectName,
      issuer: caCert.subjectName,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + lifetimeSeconds * 1000),
      publicKey: req.publicKey,
      signingKey: issuer.privateKey,
      signingAlgorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
        await x509.SubjectKeyIdentifierExtension.create(req.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(caCert),
        ...(san ? [san] : []),
      ],
    });
  };
  checkLeaf(new Uint8Array((await x509Issue()).rawData), ca, `@peculiar/x509 ${kind}`);
  const peculiar = await measure(`@peculiar/x509 Pkcs10 verify + X509CertificateGenerator (no policy)`, x509Issue, 1);
  report(`pki: CSR -> certificate, ${kind} CA, ${kind} CSR keys, one thread`, [baseline, parseOnly, issueOnly, full, peculiar], baseline);
  return full;
}

/**
 * Node 20 does not apply `--import tsx` to worker threads, so each worker registers tsx itself
 * before importing the TypeScript worker module.
 */
const WORKER_BOOTSTRAP = `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))})
  .then((tsx) => { tsx.register(); return import(${JSON.stringify(new URL("./pki-worker.ts", import.meta.url).href)}); })`;

/** Worker threads holding the CA; CSR DERs go in batches of `batch`, certificate DERs come back. */
class IssuerPool {
  #workers: Array<{ worker: Worker; pending: number }> = [];
  #waiting = new Map<number, { resolve: (ders: Uint8Array[]) => void; reject: (e: Error) => void }>();
  #nextId = 0;

  static async start(size: number, init: PkiWorkerInit): Promise<IssuerPool> {
    const pool = new IssuerPool();
    await Promise.all(Array.from({ length: size }, () => pool.#spawn(init)));
    return pool;
  }

  #spawn(init: PkiWorkerInit): Promise<void> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(WORKER_BOOTSTRAP, { eval: true, workerData: init });
      const slot = { worker, pending: 0 };
      worker.on("error", reject);
      worker.on("message", (reply: PkiWorkerReply) => {
        if (reply.kind === "ready") {
          this.#workers.push(slot);
          resolve();
          return;
        }
        slot.pending--;
        const waiter = this.#waiting.get(reply.id);
        this.#waiting.delete(reply.id);
        if (reply.kind === "issued") waiter?.resolve(reply.ders);
        else waiter?.reject(new Error(reply.error));
      });
    });
  }

  /** Sends to the least busy worker. */
  issue(csrs: Uint8Array[]): Promise<Uint8Array[]> {
    let slot = this.#workers[0];
    for (const w of this.#workers) if (slot === undefined || w.pending < slot.pending) slot = w;
    if (!slot) throw new Error("pool not started");
    const id = this.#nextId++;
    slot.pending++;
    const request: PkiWorkerRequest = { id, csrs };
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      slot.worker.postMessage(request);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.worker.terminate()));
  }
}

/** Issuances per second through the pool with `inFlight` requests of `batch` CSRs outstanding. */
async function poolThroughput(name: string, pool: IssuerPool, csrs: Bytes[], batch: number, inFlight: number): Promise<Measurement> {
  let i = 0;
  const nextBatch = (): Bytes[] => Array.from({ length: batch }, () => csrs[i++ % csrs.length] as Bytes);
  const drive = async (until: number): Promise<number> => {
    let ops = 0;
    await Promise.all(Array.from({ length: inFlight }, async () => {
      while (performance.now() < until) {
        const ders = await pool.issue(nextBatch());
        ops += ders.length; // not `ops += await ...`: that reads `ops` before the await
      }
    }));
    return ops;
  };
  await drive(performance.now() + 300);
  const started = performance.now();
  const ops = await drive(started + POOL_SECONDS * 1000);
  const elapsedS = (performance.now() - started) / 1000;
  return { name, opsPerSecond: ops / elapsedS, microsPerOp: (elapsedS * 1e6) / ops };
}

async function benchPool(kind: CaKind, caDir: string, ca: InitCaResult, csrs: Bytes[], single: Measurement | undefined): Promise<void> {
  const started = performance.now();
  const pool = await IssuerPool.start(WORKERS, { dir: caDir, passphrase: PASSPHRASE });
  const startMs = performance.now() - started;
  try {
    const [first] = await pool.issue([csrs[0] as Bytes]);
    if (!first) throw new Error("the pool issued nothing");
    checkLeaf(first, ca, `pool ${kind}`);
    const baseline = single ?? (await measure(`issueFromCsrNow ${kind}`, () => issueFromCsrNow({ issuer: ca.issuer, csrPem: csrs[0] as Bytes, profile: DEFAULT_CLIENT_PROFILE })));
    const rows = [
      { ...baseline, name: `issueFromCsrNow, main thread only (baseline)` },
      await poolThroughput(`${WORKERS} workers, 1 CSR per message, 32 in flight`, pool, csrs, 1, 32),
      await poolThroughput(`${WORKERS} workers, 16 CSRs per message, 4 in flight`, pool, csrs, 16, 4),
    ];
    report(`pki: CSR -> certificate, ${kind} CA, worker_threads pool (started in ${startMs.toFixed(0)} ms)`, rows, rows[0] as Measurement);
    const best = Math.max(...rows.slice(1).map((r) => r.opsPerSecond));
    process.stdout.write(`goal >= 1000 issuances/s with ${WORKERS} workers: ${best >= 1000 ? "met" : "NOT met"} (${best.toFixed(0)}/s)\n`);
  } finally {
    await pool.close();
  }
}

/** Median of `runs` timings of `fn`, in milliseconds. */
function timeMs(runs: number, fn: () => unknown): number {
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? Number.NaN;
}

function printMs(section: string, rows: Array<{ name: string; ms: number }>, baselineMs: number): void {
  process.stdout.write(`\n## ${section}\n`);
  const width = Math.max(...rows.map((r) => r.name.length));
  for (const row of rows) {
    process.stdout.write(`${row.name.padEnd(width)}  ${row.ms.toFixed(1).padStart(9)} ms  cost x${(row.ms / baselineMs).toFixed(2)} of baseline\n`);
  }
}

function opensslVerifyMs(args: string[]): { ms: number; output: string } {
  const t0 = performance.now();
  const r = spawnSync("openssl", args, { encoding: "utf8", timeout: 60_000 });
  const ms = performance.now() - t0;
  if (r.error) throw r.error;
  return { ms, output: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

async function benchCrl(dir: string, ca: InitCaResult): Promise<void> {
  const issuer = ca.issuer;
  const key = KeyObject.from(issuer.privateKey);
  const now = Date.now();
  const leaf = issueLeafDer({ issuer, spki: new Uint8Array(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "der", type: "spki" })),
    identity: "spiffe://postern.local/client/revoked", lifetimeSeconds: 3600, usage: "client" });
  const leafPath = join(dir, "revoked-leaf.pem");
  const bundlePath = join(dir, "ca-bundle.pem");
  await writeFile(leafPath, leaf.pem);
  await writeFile(bundlePath, ca.caBundlePem);
  const span = { thisUpdateMs: now, nextUpdateMs: now + 86_400_000 };
  for (const n of [10_000, 100_000]) {
    const entries: RevokedEntry[] = Array.from({ length: n - 1 }, (_, i) => ({
      serial: "7f" + i.toString(16).padStart(30, "0"),
      revokedAtMs: now - i * 1000,
      reason: i % 3 === 0 ? "keyCompromise" : "superseded",
    }));
    entries.push({ serial: leaf.serial, revokedAtMs: now, reason: "keyCompromise" });
    const runs = n <= 10_000 ? 5 : 3;
    let crl = buildCrl({ issuer, entries, crlNumber: 1n, ...span });
    const cold = timeMs(runs, () => (crl = buildCrl({ issuer, entries, crlNumber: 1n, ...span })));
    const cache = new CrlEntryCache();
    cache.encodeAll(entries);
    let extra = 0;
    const warm = timeMs(runs, () => {
      // One more revocation each time, as after a `revoke`; the cache re-encodes only it.
      entries.push({ serial: (0x7e0000 + extra++).toString(16), revokedAtMs: now, reason: "unspecified" });
      buildCrl({ issuer, entries: cache.encodeAll(entries), crlNumber: 2n, ...span });
    });
    const tbs = randomBytes(tbsOf(crl.der).bytes.length);
    const bare = timeMs(runs, () => sign("sha256", tbs, key));
    const crlPath = join(dir, `crl-${n}.pem`);
    await writeFile(crlPath, crl.pem);
    const verify = opensslVerifyMs(["verify", "-crl_check", "-CAfile", bundlePath, "-CRLfile", crlPath, leafPath]);
    if (!/certificate revoked/.test(verify.output)) throw new Error(`openssl verify did not see the revocation: ${verify.output}`);
    const noCrl = opensslVerifyMs(["verify", "-CAfile", bundlePath, leafPath]);
    const label = `${n / 1000}k`;
    printMs(`pki: CRL, ${label} entries, P-256 CA, ${(crl.der.length / 1e6).toFixed(2)} MB DER (median of ${runs})`, [
      { name: `bare crypto.sign P-256 over the ${label} TBSCertList (baseline)`, ms: bare },
      { name: `buildCrl from ${label} RevokedEntry objects (cold)`, ms: cold },
      { name: `rebuild +1 revocation through a warm CrlEntryCache`, ms: warm },
      { name: `openssl verify -crl_check on the ${label} CRL (revoked, as expected)`, ms: verify.ms },
      { name: `openssl verify without CRL (process start + chain)`, ms: noCrl.ms },
    ], bare);
  }
}
