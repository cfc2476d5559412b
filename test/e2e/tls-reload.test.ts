/**
 * TLS material that reloads without a restart, real processes and openssl: `postern cert
 * renew-server` and a good pair written into pki.dir switch new handshakes to the new serial
 * (as `openssl s_client` sees it) while a keep-alive connection opened before keeps working; a
 * broken pair (not PEM, a key that does not match, expired, another CA) keeps the old serial,
 * is logged by file and counted in /metrics; with tls.watchFiles false, SIGHUP does it; with
 * two cluster workers a renewal reaches both workers' handshakes, an HTTP backend's client
 * certificate, and a worker started after it.
 */
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpsServer } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import t from "tap";
import { canonicalSerial } from "../../src/pki/serial.js";
import { freePort } from "../helpers/net.js";
import { runTool } from "../helpers/process.js";
import { adminFlags, eventually, postern, startPostern, type PosternProcess } from "../helpers/postern-process.js";
import { answerOn, openTls, tlsMaterial } from "../helpers/raw-tls.js";
import { demoClient } from "../helpers/replica.js";
import { signRawRequest } from "../helpers/signed-raw.js";

t.setTimeout(600_000);

const root = await mkdtemp(join(tmpdir(), "postern-tls-reload-"));
t.teardown(() => rm(root, { recursive: true, force: true }));

/** The serial of the certificate a new handshake gets, as openssl prints it (canonical hex). */
async function servedSerial(port: number): Promise<string> {
  const result = await runTool("sh", ["-c", `openssl s_client -connect 127.0.0.1:${port} -servername localhost -showcerts </dev/null 2>/dev/null | openssl x509 -noout -serial`]);
  const hex = /^serial=([0-9A-F]+)$/m.exec(result.stdout)?.[1];
  if (!hex) throw new Error(`no serial from openssl s_client: ${result.stdout}${result.stderr}`);
  return canonicalSerial(hex);
}

async function metricValue(gw: PosternProcess, series: string): Promise<number> {
  const text = await (await fetch(`${gw.publicUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}

/** Replaces a file as atomic writers do: a new file beside it, renamed over it. */
async function replaceFile(path: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const temporary = `${path}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(temporary, data, { mode });
  await rename(temporary, path);
}

async function openssl(args: string[]): Promise<void> {
  const result = await runTool("openssl", args);
  if (result.code !== 0) throw new Error(`openssl ${args.join(" ")}: ${result.stderr}`);
}

/**
 * A server pair made by openssl as an operator would: a new P-256 key (PKCS#8, in clear) and a
 * certificate from the gateway's issuing CA (`days` may be negative: already expired); the
 * chain file is the leaf followed by the issuing CA.
 */
async function opensslServerPair(certs: string, days: number): Promise<{ chain: string; key: string; serial: string }> {
  const base = join(root, `pair-${randomBytes(4).toString("hex")}`);
  await openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", `${base}.key`]);
  await openssl(["req", "-new", "-key", `${base}.key`, "-subj", "/CN=localhost", "-out", `${base}.csr`]);
  await writeFile(`${base}.ext`, "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n");
  await openssl([
    "x509", "-req", "-in", `${base}.csr`, "-CA", join(certs, "issuing-ca.crt"), "-CAkey", join(certs, "issuing-ca.key"),
    "-passin", `file:${join(certs, "ca-passphrase")}`, "-days", String(days), "-extfile", `${base}.ext`, "-out", `${base}.crt`,
  ]);
  const leaf = await readFile(`${base}.crt`, "utf8");
  const serial = /^serial=([0-9A-F]+)$/m.exec((await runTool("openssl", ["x509", "-in", `${base}.crt`, "-noout", "-serial"])).stdout)![1]!;
  return { chain: leaf + (await readFile(join(certs, "issuing-ca.crt"), "utf8")), key: await readFile(`${base}.key`, "utf8"), serial: canonicalSerial(serial) };
}

/** A keep-alive data-plane connection with the demo certificate, and a signed POST on it. */
async function keepAliveConnection(certs: string, port: number): Promise<{ socket: TLSSocket; post(): Promise<number> }> {
  const material = await tlsMaterial(certs);
  const socket = await openTls(port, material);
  return {
    socket,
    post: () => {
      const request = signRawRequest(material, { authority: `localhost:${port}`, path: "/v1/messages/orders", body: '{"hello":"reload"}' });
      return answerOn(socket, request.text());
    },
  };
}

const peerSerial = (socket: TLSSocket) => canonicalSerial(socket.getPeerCertificate().serialNumber);

t.test("a gateway that watches pki.dir (the default)", async (t) => {
  const dir = join(root, "watching");
  const certs = join(dir, "certs");
  await mkdir(dir);
  const gw = await startPostern(dir, {});
  t.teardown(() => gw.stop());
  const pid = gw.child.pid;
  const failures = (what: string) => metricValue(gw, `postern_reload_failures_total{what="${what}"}`);

  t.test("postern cert renew-server switches new handshakes to a new serial without a restart; an open keep-alive connection keeps working", async (t) => {
    const before = await servedSerial(gw.dataPort);
    const open = await keepAliveConnection(certs, gw.dataPort);
    t.teardown(() => open.socket.destroy());
    t.equal(await open.post(), 202, "a signed message on the connection opened before");
    t.equal(peerSerial(open.socket), before);

    const renewed = await postern(dir, {}, ["cert", "renew-server", ...adminFlags(certs, gw.adminPort)]);
    t.equal(renewed.code, 0, renewed.stderr);
    const serial = /renewed the server certificate: ([0-9a-f]+) \(new key\)/.exec(renewed.stdout)?.[1];
    t.ok(serial, renewed.stdout);
    t.not(serial, before);
    t.equal(await servedSerial(gw.dataPort), serial, "new handshakes get the new certificate at once");
    t.equal(await servedSerial(gw.adminPort), serial, "on the admin listener too");
    t.equal(gw.child.pid, pid, "the same process");
    t.equal(gw.child.exitCode, null, "still running");
    t.equal(await open.post(), 202, "the connection opened before still carries messages");
    t.equal(open.socket.destroyed, false);
    t.equal(await metricValue(gw, `postern_server_certificate_info{serial="${serial}",not_after="${/valid until (\S+);/.exec(renewed.stdout)?.[1]}"}`), 1);

    const keyBefore = await readFile(join(certs, "server.key"), "utf8");
    const kept = await postern(dir, {}, ["cert", "renew-server", "--keep-key", ...adminFlags(certs, gw.adminPort)]);
    t.equal(kept.code, 0, kept.stderr);
    const keptSerial = /renewed the server certificate: ([0-9a-f]+) \(same key\)/.exec(kept.stdout)?.[1];
    t.ok(keptSerial, kept.stdout);
    t.equal(await servedSerial(gw.dataPort), keptSerial);
    t.equal(await readFile(join(certs, "server.key"), "utf8"), keyBefore, "--keep-key leaves the key file as it was");

    const listed = await postern(dir, {}, ["cert", "list", "--all", "--json", ...adminFlags(certs, gw.adminPort)]);
    t.equal(listed.code, 0, listed.stderr);
    const inventory = (JSON.parse(listed.stdout) as { items: Array<{ serial: string; profile: string }> }).items;
    t.ok(inventory.some((c) => c.serial === serial && c.profile === "server") && inventory.some((c) => c.serial === keptSerial), "both are on record");
    const audit = await readFile(join(dir, "data", "audit.jsonl"), "utf8");
    t.match(audit, new RegExp(`"action":"server.renew","subject":"${keptSerial}"`), "and audited");
  });

  t.test("a broken pair keeps new handshakes on the old serial; the file and the reason are logged and the failure counted", async (t) => {
    const current = await servedSerial(gw.dataPort);
    const good = { chain: await readFile(join(certs, "server.crt"), "utf8"), key: await readFile(join(certs, "server.key"), "utf8") };
    const other = await opensslServerPair(certs, 30);
    const expired = await opensslServerPair(certs, -1);
    // A CA of its own (its key and certificate where issuing-ca.* would be) signs the stranger.
    const foreignCa = join(root, "foreign-ca");
    await mkdir(foreignCa);
    await openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(foreignCa, "issuing-ca.key"), "-subj", "/CN=Postern issuing CA", "-days", "30", "-out", join(foreignCa, "issuing-ca.crt")]);
    await writeFile(join(foreignCa, "ca-passphrase"), "unused");
    const stranger = await opensslServerPair(foreignCa, 30);
    const cases: Array<{ name: string; what: string; reason: RegExp; key?: string; chain: string }> = [
      { name: "a certificate file that is not PEM", what: "server_certificate", reason: /holds no PEM certificate/, chain: "this is not a certificate\n" },
      { name: "a certificate whose key is not server.key", what: "server_key", reason: /does not match the certificate in server\.crt/, chain: other.chain },
      { name: "an expired certificate with its key", what: "server_certificate", reason: /is expired/, key: expired.key, chain: expired.chain },
      { name: "a certificate of another CA with its key", what: "server_certificate", reason: /does not chain to a CA of ca-bundle\.pem/, key: stranger.key, chain: stranger.chain },
    ];
    for (const broken of cases) {
      const counted = await failures(broken.what);
      const logged = gw.stderr().length;
      if (broken.key !== undefined) await replaceFile(join(certs, "server.key"), broken.key, 0o600);
      await replaceFile(join(certs, "server.crt"), broken.chain);
      await eventually(`${broken.name}: counted`, async () => (await failures(broken.what)) > counted);
      t.equal(await servedSerial(gw.dataPort), current, `${broken.name}: new handshakes keep ${current}`);
      const lines = (await gw.logged(new RegExp(`"what":"${broken.what}".*"msg":"TLS reload refused`), logged)).split("\n").filter((l) => l.includes("TLS reload refused")).map((l) => JSON.parse(l) as { file: string; reason: string; what: string });
      const named = lines.find((l) => l.what === broken.what);
      t.ok(named && broken.reason.test(named.reason) && named.file.endsWith(broken.what === "server_key" ? "server.key" : "server.crt"), `${broken.name}: logged with the file and why: ${JSON.stringify(lines)}`);
    }
    // The running pair written back: byte for byte what is served, so nothing to apply.
    await replaceFile(join(certs, "server.key"), good.key, 0o600);
    await replaceFile(join(certs, "server.crt"), good.chain);
    t.equal(await servedSerial(gw.dataPort), current);
    t.equal((await demoClient(certs, gw.dataPort).then(async (c) => (await c.send("/v1/messages/orders", "{}").finally(() => c.close())).status)), 202, "clients are served throughout");
  });

  t.test("a good pair (openssl, a key in clear) switches new handshakes to its serial while an open keep-alive connection keeps working", async (t) => {
    const before = await servedSerial(gw.dataPort);
    const open = await keepAliveConnection(certs, gw.dataPort);
    t.teardown(() => open.socket.destroy());
    t.equal(await open.post(), 202);
    const fresh = await opensslServerPair(certs, 30);
    const applied = await metricValue(gw, 'postern_reloads_total{what="tls"}');
    await replaceFile(join(certs, "server.key"), fresh.key, 0o600);
    await replaceFile(join(certs, "server.crt"), fresh.chain);
    await eventually("the new serial is served", async () => (await servedSerial(gw.dataPort)) === fresh.serial);
    t.not(fresh.serial, before);
    t.equal(await servedSerial(gw.adminPort), fresh.serial, "the admin listener too");
    t.equal(await open.post(), 202, "the connection opened before still carries messages");
    t.equal(peerSerial(open.socket), before, "over the certificate it was opened with");
    t.equal(await metricValue(gw, 'postern_reloads_total{what="tls"}'), applied + 1, "one reload for the key and the certificate written one after the other");
    const client = await demoClient(certs, gw.dataPort);
    t.equal((await client.send("/v1/messages/orders", "{}").finally(() => client.close())).status, 202, "a client verifying the server against ca-bundle.pem is served over the new certificate");
    const leafPath = join(root, `${fresh.serial}.pem`);
    await writeFile(leafPath, fresh.chain.slice(0, fresh.chain.indexOf("-----END CERTIFICATE-----") + 26));
    await eventually("OCSP knows the reloaded certificate (adopted into the inventory)", async () => {
      const ocsp = await runTool("openssl", ["ocsp", "-issuer", join(certs, "issuing-ca.crt"), "-cert", leafPath, "-url", `${gw.publicUrl}/ocsp`, "-CAfile", join(certs, "ca-bundle.pem")]);
      return ocsp.stdout.includes(": good");
    });
    const weak = await runTool("sh", ["-c", `openssl s_client -connect 127.0.0.1:${gw.dataPort} -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA </dev/null 2>&1`]);
    t.not(weak.code, 0, "the reloaded context keeps the cipher policy: no CBC suite");
    t.equal(gw.child.pid, pid);
  });
});

t.test("with tls.watchFiles false, SIGHUP reloads (and says why it refuses a broken pair)", async (t) => {
  const dir = join(root, "signal");
  const certs = join(dir, "certs");
  await mkdir(dir);
  await writeFile(join(dir, "postern.yaml"), "tls:\n  watchFiles: false\n");
  const gw = await startPostern(dir, { POSTERN_CONFIG: join(dir, "postern.yaml") });
  t.teardown(() => gw.stop());
  const before = await servedSerial(gw.dataPort);
  const good = await readFile(join(certs, "server.crt"), "utf8");

  await replaceFile(join(certs, "server.crt"), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  gw.child.kill("SIGHUP");
  await eventually("the refusal is counted", async () => (await metricValue(gw, 'postern_reload_failures_total{what="server_certificate"}')) === 1);
  t.match(await gw.logged(/TLS reload refused/), /"file":"certs\/server\.crt","reason":"certificate 1 is not valid PEM\/DER","what":"server_certificate","trigger":"signal"/);
  t.equal(await servedSerial(gw.dataPort), before);
  await replaceFile(join(certs, "server.crt"), good);

  const fresh = await opensslServerPair(certs, 30);
  await replaceFile(join(certs, "server.key"), fresh.key, 0o600);
  await replaceFile(join(certs, "server.crt"), fresh.chain);
  // No watch: a second later (four debounce periods) nothing has changed.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  t.equal(await servedSerial(gw.dataPort), before, "files alone change nothing");
  gw.child.kill("SIGHUP");
  await eventually("SIGHUP applies the new pair", async () => (await servedSerial(gw.dataPort)) === fresh.serial);
  t.match(await gw.logged(/TLS material reloaded/), new RegExp(`"trigger":"signal","serial":"${fresh.serial}".*"msg":"TLS material reloaded`));
  gw.child.kill("SIGHUP");
  await eventually("a SIGHUP with nothing new says so", async () => gw.stderr().includes("TLS material unchanged"));
});

t.test("with 2 workers and an HTTP backend: a renewal reaches every worker's new handshakes and the backend's client certificate; a replaced worker serves it too", async (t) => {
  const dir = join(root, "workers");
  const certs = join(dir, "certs");
  await mkdir(dir);
  const upstreamPort = await freePort();
  await writeFile(join(dir, "postern.yaml"), `backends:\n  messages: { type: http, url: "https://127.0.0.1:${upstreamPort}/in" }\n`);
  const gw = await startPostern(dir, { POSTERN_CONFIG: join(dir, "postern.yaml"), POSTERN_WORKERS: "2", POSTERN_HANDSHAKES_PER_SECOND_PER_ADDRESS: "0" });
  t.teardown(() => gw.stop());
  // The backend: mTLS, trusting the gateway's CA, recording the serial of each client certificate it sees.
  const seen: string[] = [];
  const upstream = createHttpsServer(
    { key: await readFile(join(certs, "server.key")), passphrase: (await readFile(join(certs, "ca-passphrase"), "utf8")).trim(), cert: await readFile(join(certs, "server.crt")), ca: await readFile(join(certs, "ca-bundle.pem")), requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      seen.push(peerSerial(req.socket as TLSSocket));
      req.resume();
      req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end("{}"));
    },
  );
  await new Promise<void>((resolve) => upstream.listen(upstreamPort, "127.0.0.1", resolve));
  t.teardown(() => {
    upstream.closeAllConnections();
    return new Promise((resolve) => upstream.close(resolve));
  });
  /** Signed messages over new connections (the primary hands them to the workers in turn); resolves with their statuses. */
  const sendFresh = async (n: number) => {
    const statuses: number[] = [];
    for (let i = 0; i < n; i++) {
      const client = await demoClient(certs, gw.dataPort);
      statuses.push((await client.send("/v1/messages/orders", `{"n":${i}}`).finally(() => client.close())).status);
    }
    return statuses;
  };
  /** The serials four new handshakes get: the workers take new connections in turn. */
  const servedByAll = async () => [...new Set(await Promise.all([1, 2, 3, 4].map(() => servedSerial(gw.dataPort))))];

  const before = await servedSerial(gw.dataPort);
  t.same(await sendFresh(4), [200, 200, 200, 200], "the backend's answer, passed through");
  t.same([...new Set(seen)], [before], "the backend saw the server certificate as the gateway's client certificate");

  const renewed = await postern(dir, {}, ["cert", "renew-server", ...adminFlags(certs, gw.adminPort)]);
  t.equal(renewed.code, 0, renewed.stderr);
  const serial = /renewed the server certificate: ([0-9a-f]+) \(new key\)/.exec(renewed.stdout)?.[1];
  t.ok(serial && serial !== before, renewed.stdout);
  await eventually("every worker serves the renewed certificate", async () => {
    const all = await servedByAll();
    return all.length === 1 && all[0] === serial;
  });
  seen.length = 0;
  await eventually("the backend sees the renewed certificate from every worker", async () => {
    await sendFresh(4);
    return seen.slice(-4).every((s) => s === serial);
  });

  const workers = (await runTool("pgrep", ["-P", String(gw.child.pid)])).stdout.trim().split("\n").map(Number).filter(Boolean);
  t.equal(workers.length, 2, "two workers");
  process.kill(workers[0]!, "SIGKILL");
  await eventually("a worker replaces the killed one", async () => {
    const now = (await runTool("pgrep", ["-P", String(gw.child.pid)])).stdout.trim().split("\n").map(Number).filter(Boolean);
    return now.length === 2 && !now.includes(workers[0]!);
  });
  await eventually("the replacement serves the renewed certificate too", async () => {
    const all = await servedByAll();
    return all.length === 1 && all[0] === serial;
  });
  t.same(await sendFresh(4), [200, 200, 200, 200], "the backend's answer, passed through");
  t.equal(await gw.stop(), 0);
});
