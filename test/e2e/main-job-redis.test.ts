import { createHash, X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { useTestRedis } from "../helpers/redis.js";
import { ensurePki } from "../../src/pki/ca/bootstrap.js";
import { PosternClient } from "../../src/client/index.js";
import { fieldsOf, parseJwks, readClientCertificate, verifyStreamEntry } from "../../src/consumer/index.js";
import { startGateway, TEST_REDIS_URL } from "../helpers/gateway.js";

t.test("redis mode: nonce claim and XADD in one script", async (t) => {
  const { redis, keyPrefix } = await useTestRedis(t);
  const gw = await startGateway({ redis: { url: TEST_REDIS_URL, keyPrefix } });
  t.teardown(() => gw.stop());
  t.equal(gw.app.mode, "redis");
  const stream = `${keyPrefix}{messages}:messages`;
  const client = await gw.client();

  t.test("a message lands in the Redis Stream with the gateway's signature", async (t) => {
    const result = await client.send("/v1/messages/orders", '{"n":1}');
    t.equal(result.status, 202);
    const entries = await redis.xrange(stream, "-", "+");
    const fields = Object.fromEntries(
      entries.at(-1)![1].reduce<string[][]>((acc, v, i, all) => (i % 2 ? acc : [...acc, [v, all[i + 1]!]]), []),
    );
    t.equal(fields["message-id"], result.id);
    t.equal(fields.body, '{"n":1}');
    t.match(fields["signature-input"], /"client-cert-sha256"/);
    t.equal(fields["client-cert"], undefined, "the certificate is not copied into every entry");
  });

  t.test("the entry names the certificate by its SHA-256, kept once beside the stream; consumers verify it", async (t) => {
    const keys = parseJwks(await (await fetch(`${gw.publicUrl}/.well-known/postern-keys`)).json());
    const sent = await Promise.all([1, 2, 3].map((n) => client.send("/v1/messages/orders", `{"n":${n}}`)));
    t.same(sent.map((s) => s.status), [202, 202, 202]);
    const entries = await redis.xrangeBuffer(stream, "-", "+");
    const verdicts = entries.slice(-3).map(([, flat]) => verifyStreamEntry(fieldsOf(flat), { keys }));
    const demo = new X509Certificate(await readFile(join(gw.dir, "certs", "demo-client.crt")));
    const thumbprint = createHash("sha256").update(demo.raw).digest("base64url");
    for (const verdict of verdicts) t.same(verdict.ok && verdict.clientCertSha256, thumbprint);
    t.equal(await redis.hlen(`${keyPrefix}{messages}:meta:client-certs`), 1, "one certificate, however many entries");
    const der = await readClientCertificate(redis, keyPrefix, "messages", thumbprint);
    t.ok(der?.equals(demo.raw), "the consumer gets the certificate back by thumbprint");
    await redis.hset(`${keyPrefix}{messages}:meta:client-certs`, thumbprint, "not the certificate");
    t.equal(await readClientCertificate(redis, keyPrefix, "messages", thumbprint), undefined, "bytes that do not hash to the thumbprint are refused");
    await redis.hset(`${keyPrefix}{messages}:meta:client-certs`, thumbprint, demo.raw);
    const fields = fieldsOf(entries.at(-1)![1]);
    const other = `:${Buffer.alloc(32, 1).toString("base64")}:`;
    t.notOk(verifyStreamEntry({ ...fields, "client-cert-sha256": other }, { keys }).ok, "another thumbprint breaks the signature");
  });

  t.test("a replay is refused and adds no entry", async (t) => {
    const message = client.prepare("/v1/messages/orders", "{}");
    t.equal((await client.dispatch(message)).status, 202);
    const before = await redis.xlen(stream);
    const again = await client.dispatch(message);
    t.equal(again.status, 409);
    t.equal((again.body as { code: string }).code, "replayed");
    t.equal(await redis.xlen(stream), before);
  });

  t.test("100 concurrent copies of one message: one 202, one entry", async (t) => {
    const before = await redis.xlen(stream);
    const message = client.prepare("/v1/messages/orders", '{"once":true}');
    const answers = await Promise.all(Array.from({ length: 100 }, () => client.dispatch(message)));
    t.equal(answers.filter((a) => a.status === 202).length, 1);
    t.equal(answers.filter((a) => a.status === 409).length, 99);
    t.equal(await redis.xlen(stream), before + 1);
  });

  t.test("readiness reports Redis", async (t) => {
    const ready = await (await fetch(`${gw.publicUrl}/readyz`)).json();
    t.same(ready, { status: "ready", mode: "redis", redis: "up" });
  });
});

t.test("a client certificate from another CA fails the handshake, counted as unknown_ca", async (t) => {
  const gw = await startGateway();
  const otherDir = await mkdtemp(join(tmpdir(), "postern-other-ca-"));
  t.teardown(async () => {
    await gw.stop();
    await rm(otherDir, { recursive: true, force: true });
  });
  await ensurePki({ dir: otherDir, hostnames: [] });
  const stranger = new PosternClient({
    url: gw.dataUrl,
    cert: await readFile(join(otherDir, "demo-client.crt")),
    key: await readFile(join(otherDir, "demo-client.key")),
    ca: await readFile(join(gw.dir, "certs", "ca-bundle.pem")),
    attempts: 1,
  });
  t.teardown(() => stranger.close());
  await t.rejects(stranger.send("/v1/messages/orders", "{}"));
  const metrics = await (await fetch(`${gw.publicUrl}/metrics`)).text();
  t.match(metrics, /postern_tls_handshake_failures_total\{reason="unknown_ca"\} [1-9]/);
});
