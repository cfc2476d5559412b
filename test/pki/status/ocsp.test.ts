import t, { type Test } from "tap";
import { readFileSync, writeFileSync } from "node:fs";
import { once } from "node:events";
import { createServer, type IncomingMessage } from "node:http";
import { join } from "node:path";
import { decodeOcspGetPath, respondOcsp, type OcspCertStatus } from "../../../src/pki/status/ocsp.js";
import { mintTestPki, openssl, opensslAsync, type TestPki } from "./crl-fixture.js";

const REVOKED_AT = Date.UTC(2030, 2, 4, 5, 6, 7);

async function body(req: IncomingMessage): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return new Uint8Array(Buffer.concat(chunks));
}

/** A tiny OCSP server over `respondOcsp`, POST and GET, on port 0. */
async function startResponder(t: Test, pki: TestPki, statuses: Map<string, OcspCertStatus>, failLookup = false) {
  const server = createServer(async (req, res) => {
    const requestDer = req.method === "POST" ? await body(req) : decodeOcspGetPath(req.url ?? "");
    if (!requestDer) {
      res.writeHead(404).end();
      return;
    }
    const answer = await respondOcsp({
      requestDer,
      issuer: pki.issuing,
      lookup: async (serial) => {
        if (failLookup) throw new Error("store down");
        return statuses.get(serial) ?? { status: "unknown" };
      },
      nowMs: Date.now(),
      validitySeconds: 3600,
    });
    res.writeHead(200, { "content-type": "application/ocsp-response" }).end(answer);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.teardown(() => new Promise((r) => server.close(r)));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}/ocsp`;
}

t.test("openssl ocsp: good, revoked with time and reason, unknown; responses verify", async (t) => {
  const pki = await mintTestPki("P-256");
  t.teardown(pki.cleanup);
  const good = await pki.issueLeaf();
  const revoked = await pki.issueLeaf("00ff02");
  const unknown = await pki.issueLeaf();
  const statuses = new Map<string, OcspCertStatus>([
    [good.serial, { status: "good" }],
    [revoked.serial, { status: "revoked", revokedAtMs: REVOKED_AT, reason: "keyCompromise" }],
  ]);
  const url = await startResponder(t, pki, statuses);
  const ask = (leafPath: string, ...digest: string[]) =>
    opensslAsync(["ocsp", "-issuer", pki.issuing.path, ...digest, "-cert", leafPath, "-url", url, "-CAfile", pki.bundlePath]);

  const g = await ask(good.path);
  t.match(g.stderr, /Response verify OK/);
  t.notMatch(g.stderr + g.stdout, /nonce/i, "nonce echoed (openssl warns otherwise)");
  t.match(g.stdout, new RegExp(`${good.path}: good\\n\\s+This Update: .*\\n\\s+Next Update: `));

  const r = await ask(revoked.path);
  t.match(r.stderr, /Response verify OK/);
  t.match(r.stdout, /: revoked/);
  t.match(r.stdout, /Reason: keyCompromise/);
  t.match(r.stdout, /Revocation Time: Mar {2}4 05:06:07 2030 GMT/);

  const u = await ask(unknown.path);
  t.match(u.stderr, /Response verify OK/);
  t.match(u.stdout, /: unknown/);

  const sha256 = await ask(good.path, "-sha256");
  t.match(sha256.stderr, /Response verify OK/);
  t.match(sha256.stdout, /: good/);

  const multi = await opensslAsync(["ocsp", "-issuer", pki.issuing.path, "-cert", good.path, "-cert", revoked.path, "-url", url, "-CAfile", pki.bundlePath]);
  t.match(multi.stdout, /: good[\s\S]*: revoked/);
});

t.test("a CertID for another issuer is answered unknown, never good", async (t) => {
  const pki = await mintTestPki("P-384");
  const other = await mintTestPki("P-256");
  t.teardown(() => {
    pki.cleanup();
    other.cleanup();
  });
  const foreign = await other.issueLeaf();
  // Same serial marked good here: only the issuer hashes can tell them apart.
  const url = await startResponder(t, pki, new Map([[foreign.serial, { status: "good" }]]));
  const r = await opensslAsync(["ocsp", "-issuer", other.issuing.path, "-cert", foreign.path, "-url", url, "-noverify"]);
  t.match(r.stdout, /: unknown/);
});

t.test("malformed requests get malformedRequest; a failing lookup gets internalError", async (t) => {
  const pki = await mintTestPki("Ed25519");
  t.teardown(pki.cleanup);
  const base = { issuer: pki.issuing, lookup: async () => ({ status: "good" }) as const, nowMs: Date.now(), validitySeconds: 60 };
  const malformed = Uint8Array.of(0x30, 0x03, 0x0a, 0x01, 0x01);
  t.same(await respondOcsp({ ...base, requestDer: new Uint8Array([1, 2, 3]) }), malformed);
  t.same(await respondOcsp({ ...base, requestDer: new Uint8Array(0) }), malformed);
  t.same(await respondOcsp({ ...base, requestDer: new Uint8Array(20_000).fill(0x30) }), malformed);
  const leaf = await pki.issueLeaf();
  const reqPath = join(pki.dir, "req.der");
  t.equal(openssl(["ocsp", "-issuer", pki.issuing.path, "-cert", leaf.path, "-reqout", reqPath, "-no_nonce"]).code, 0);
  const req = new Uint8Array(readFileSync(reqPath));
  t.same(await respondOcsp({ ...base, requestDer: new Uint8Array([...req, 0]) }), malformed, "trailing bytes");
  const failing = await respondOcsp({ ...base, requestDer: req, lookup: () => Promise.reject(new Error("down")) });
  t.same(failing, Uint8Array.of(0x30, 0x03, 0x0a, 0x01, 0x02));
  const respPath = join(pki.dir, "malformed.der");
  writeFileSync(respPath, malformed);
  t.match(openssl(["ocsp", "-respin", respPath, "-resp_text", "-noverify"]).stdout, /malformedrequest/i);
  // An Ed25519 CA signs too:
  const okPath = join(pki.dir, "ok.der");
  writeFileSync(okPath, await respondOcsp({ ...base, requestDer: req }));
  const v = openssl(["ocsp", "-respin", okPath, "-issuer", pki.issuing.path, "-cert", leaf.path, "-CAfile", pki.bundlePath]);
  t.match(v.stderr, /Response verify OK/);
  t.match(v.stdout, /: good/);
});

t.test("GET /ocsp/<url-encoded base64> answers like POST", async (t) => {
  const pki = await mintTestPki("RSA");
  t.teardown(pki.cleanup);
  const leaf = await pki.issueLeaf();
  const url = await startResponder(t, pki, new Map([[leaf.serial, { status: "revoked", revokedAtMs: REVOKED_AT, reason: "superseded" }]]));
  const reqPath = join(pki.dir, "get-req.der");
  t.equal(openssl(["ocsp", "-issuer", pki.issuing.path, "-cert", leaf.path, "-reqout", reqPath, "-no_nonce"]).code, 0);
  const b64 = readFileSync(reqPath).toString("base64");
  const res = await fetch(`${url}/${encodeURIComponent(b64)}`);
  t.equal(res.status, 200);
  const respPath = join(pki.dir, "get-resp.der");
  writeFileSync(respPath, new Uint8Array(await res.arrayBuffer()));
  const v = openssl(["ocsp", "-respin", respPath, "-issuer", pki.issuing.path, "-cert", leaf.path, "-CAfile", pki.bundlePath]);
  t.match(v.stderr, /Response verify OK/);
  t.match(v.stdout, /: revoked[\s\S]*Reason: superseded/);
});

t.test("decodeOcspGetPath accepts encoded and raw base64, refuses the rest", async (t) => {
  t.same(decodeOcspGetPath("/ocsp/MAMKAQE%3D"), Uint8Array.of(0x30, 0x03, 0x0a, 0x01, 0x01));
  t.same(decodeOcspGetPath("/ocsp/MAMKAQE="), Uint8Array.of(0x30, 0x03, 0x0a, 0x01, 0x01));
  t.same(decodeOcspGetPath("/ocsp/ab%2Bc%2F"), new Uint8Array(Buffer.from("ab+c/", "base64")));
  t.equal(decodeOcspGetPath("/other/MAMKAQE="), undefined);
  t.equal(decodeOcspGetPath("/ocsp/"), undefined);
  t.equal(decodeOcspGetPath("/ocsp/%E0%A4%A"), undefined);
  t.equal(decodeOcspGetPath("/ocsp/not base64!"), undefined);
  t.equal(decodeOcspGetPath("/ocsp/" + "A".repeat(70_000)), undefined);
});
