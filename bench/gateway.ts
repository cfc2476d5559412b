import { readFile } from "node:fs/promises";
import { createServer } from "node:https";
import { join } from "node:path";
import { Redis } from "ioredis";
import { PosternClient } from "../src/client/index.js";
import { startGateway, TEST_REDIS_URL, type TestGateway } from "../test/helpers/gateway.js";
import { report, type Measurement } from "./measure.js";

const CONCURRENCY = 16;
const SECONDS = 3;

/** Sends signed messages from CONCURRENCY keep-alive workers for SECONDS; returns messages per second. */
async function load(name: string, client: PosternClient, path: string): Promise<Measurement> {
  let ops = 0;
  const warm = Date.now() + 500;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (Date.now() < warm) await client.dispatch(client.prepare(path, '{"warm":true}'));
  }));
  const started = performance.now();
  const until = Date.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < until) {
        const answer = await client.dispatch(client.prepare(path, JSON.stringify({ order: ops, note: "x".repeat(200) })));
        if (answer.status !== 202) throw new Error(`${name}: status ${answer.status} ${JSON.stringify(answer.body)}`);
        ops++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return { name, opsPerSecond: ops / elapsed, microsPerOp: (elapsed * 1e6) / ops };
}

async function clientFor(gw: TestGateway, url: string): Promise<PosternClient> {
  const certs = join(gw.dir, "certs");
  return new PosternClient({
    url,
    cert: await readFile(join(certs, "demo-client.crt")),
    key: await readFile(join(certs, "demo-client.key")),
    ca: await readFile(join(certs, "ca-bundle.pem")),
    attempts: 1,
    connections: CONCURRENCY,
  });
}

/**
 * The gateway's per-message cost against a bare Node mTLS server that answers 202 without
 * looking at the request, driven by the same signing client, in the same run.
 */
export async function benchGateway(): Promise<void> {
  const embedded = await startGateway({ tls: { handshakesPerSecondPerAddress: 0 } });
  const pki = embedded.app.pki;
  const bare = createServer(
    { key: pki.serverKeyPem, cert: pki.serverCertChainPem, ca: pki.caBundlePem, requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(202, { "content-type": "application/json" });
        res.end('{"id":"x"}');
      });
    },
  );
  await new Promise<void>((resolve) => bare.listen(0, "127.0.0.1", resolve));
  const barePort = (bare.address() as { port: number }).port;

  const bareClient = await clientFor(embedded, `https://localhost:${barePort}`);
  const baseline = await load("bare Node mTLS server, 202 only (baseline)", bareClient, "/v1/messages/bench");
  await bareClient.close();
  bare.close();

  const embeddedClient = await clientFor(embedded, embedded.dataUrl);
  const embeddedRun = await load("gateway, embedded (memory nonces, fsynced file)", embeddedClient, "/v1/messages/bench");
  await embeddedClient.close();
  await embedded.stop();

  const keyPrefix = `postern-bench:${process.pid}:`;
  const redisGw = await startGateway({ redis: { url: TEST_REDIS_URL, keyPrefix }, tls: { handshakesPerSecondPerAddress: 0 } });
  const redisClient = await clientFor(redisGw, redisGw.dataUrl);
  const redisRun = await load("gateway, Redis (Lua claim + XADD)", redisClient, "/v1/messages/bench");
  await redisClient.close();
  await redisGw.stop();
  const redis = new Redis(TEST_REDIS_URL);
  const keys = await redis.keys(`${keyPrefix}*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();

  report(`gateway, ${CONCURRENCY} keep-alive connections, ${SECONDS} s each`, [baseline, embeddedRun, redisRun], baseline);
}
