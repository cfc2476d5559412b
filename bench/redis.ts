/**
 * The redis section of `npm run bench`: what one Redis spends per accepted message, the
 * capacity of a shard. Messages go through Postern's own stream backend (`deliver`: the entry
 * built and signed as the gateway does, the nonce claim and the XADD in one script) into a
 * private redis-server started for the run (no persistence), `depth` messages at a time:
 * ioredis sends the commands issued in one tick as one pipeline, as it does for a gateway's
 * concurrent requests. A gateway's depth is how many of its messages reach the Redis client in
 * one turn of its event loop: about 1-4 at the gateway section's load, more with more
 * concurrent clients; several replicas on one Redis also share its wake-ups. Against it, in the
 * same run: the same entries appended with a plain pipelined XADD (no claim, no checks), the
 * least an append of these fields can cost.
 */
import { createHash, generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { backendSchema } from "../src/config/backend-schema.js";
import { compileStreamTemplate, RedisStreamBackend, type AcceptedMessage, type StreamBackendConfig } from "../src/forward/index.js";
import { buildStreamEntry, certificateSha256 } from "../src/forward/stream-entry.js";
import type { ClientIdentity } from "../src/pki/index.js";
import { RedisReplayGuard, streamKey, type NonceClaim } from "../src/replay/index.js";
import { createContentDigest } from "../src/signing/index.js";
import { startOwnRedis } from "../test/helpers/redis-server.js";
import { redisDelta } from "./gateway/phases.js";
import { RedisProbe } from "./gateway/redis-probe.js";
import { formatTable } from "./gateway/report.js";

const DEPTHS = [1, 4, 8, 16, 32] as const;
const MESSAGES = 8000;
/** Passes of the plain XADDs over the same entries: a few microseconds each is only a few /proc ticks per pass. */
const XADD_PASSES = 4;
const WARM_MESSAGES = 500;
const BACKEND = "bench";
const PREFIX = "postern-bench:";

/** One message as the pipeline hands it to the backend, with its claim. */
interface Prepared {
  message: AcceptedMessage;
  claim: NonceClaim;
}

function prepare(count: number, bodyBytes: number, certificateDer: Buffer): Prepared[] {
  const fingerprint = createHash("sha256").update(certificateDer).digest("base64url");
  const identity: ClientIdentity = { id: "spiffe://bench.example/client", roles: [], serial: "01", fingerprint, notAfterMs: Date.now() + 86_400_000 };
  return Array.from({ length: count }, (_, i) => {
    const body = Buffer.from(JSON.stringify({ n: i, pad: "x".repeat(Math.max(0, bodyBytes - 20)) }).slice(0, bodyBytes));
    const message: AcceptedMessage = {
      messageId: randomUUID(),
      route: "messages",
      params: {},
      identity,
      clientCertDer: certificateDer,
      method: "POST",
      authority: "gateway.example:8443",
      path: "/v1/messages/bench",
      query: "",
      contentType: "application/json",
      contentDigest: createContentDigest(body),
      body,
      receivedAtMs: Date.now(),
    };
    const claim: NonceClaim = { backend: BACKEND, client: fingerprint, nonce: randomBytes(16).toString("hex"), digest: randomBytes(16).toString("hex"), expiresAtMs: Date.now() + 600_000 };
    return { message, claim };
  });
}

/** Sends `items` `depth` at a time (each group issued in one tick: one pipeline) and waits for each group. */
async function inGroups<T>(items: readonly T[], depth: number, send: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += depth) await Promise.all(items.slice(i, i + depth).map(send));
}

/** redis-server's CPU microseconds and bytes received per item while `run` ran, and items per wake-up of its event loop. */
async function perMessage(probe: RedisProbe, count: number, run: () => Promise<void>): Promise<{ cpuMicros: number; bytesIn: number; perWakeUp: number }> {
  const before = await probe.sample();
  await run();
  const spent = redisDelta(before, await probe.sample());
  return {
    cpuMicros: ((spent.redisCpuSeconds ?? Number.NaN) * 1e6) / count,
    bytesIn: (spent.redisNetInputBytes ?? Number.NaN) / count,
    perWakeUp: count / (spent.redisWakeUps ?? Number.NaN),
  };
}

export async function benchRedis(bodyBytes: number): Promise<void> {
  const say = (line = "") => process.stdout.write(`${line}\n`);
  say(`\n## redis: redis-server CPU per accepted message (one shard's capacity), by pipeline depth; ${MESSAGES} messages of ${bodyBytes} B per depth`);
  let own;
  try {
    own = await startOwnRedis(["--appendonly", "no"]);
  } catch (error) {
    say(`skipped: no redis-server could be started here (${(error as Error).message})`);
    return;
  }
  const redis = new Redis(own.url, { enableAutoPipelining: true, maxRetriesPerRequest: 0 });
  const probe = await RedisProbe.connect(own.url);
  try {
    if (typeof probe === "string") throw new Error(probe);
    if (probe.pid === undefined) throw new Error("redis-server's CPU cannot be read from /proc here");
    const signer = { key: generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey, keyid: "bench-forward" };
    const certificateDer = randomBytes(480);
    const config = backendSchema.parse({ type: "stream", stream: "messages" }) as StreamBackendConfig;
    const guard = new RedisReplayGuard({ redis, keyPrefix: PREFIX });
    const backend = await RedisStreamBackend.open({ name: BACKEND, keyPrefix: PREFIX, config, template: compileStreamTemplate(config.stream), guard, redis, signer });
    const key = streamKey(PREFIX, BACKEND, "messages");
    await inGroups(prepare(WARM_MESSAGES, bodyBytes, certificateDer), 8, ({ message, claim }) => backend.deliver(message, claim));

    const rows: string[][] = [];
    for (const depth of DEPTHS) {
      const messages = prepare(MESSAGES, bodyBytes, certificateDer);
      // The same fields, signed here once more: the plain XADD's cost is Redis's alone.
      const entries = messages.map(({ message }) => buildStreamEntry(message, signer, { sha256: certificateSha256(message.clientCertDer) }).flat());
      await redis.del(key);
      const script = await perMessage(probe, MESSAGES, () => inGroups(messages, depth, ({ message, claim }) => backend.deliver(message, claim)));
      await redis.del(key);
      const passes = Array.from({ length: XADD_PASSES }, () => entries).flat();
      const plain = await perMessage(probe, passes.length, () => inGroups(passes, depth, (fields) => redis.xadd(key, "MAXLEN", "~", "1000000", "*", ...fields)));
      rows.push([
        String(depth),
        script.perWakeUp.toFixed(1),
        script.cpuMicros.toFixed(1),
        (1e6 / script.cpuMicros).toFixed(0),
        script.bytesIn.toFixed(0),
        plain.cpuMicros.toFixed(1),
        (script.cpuMicros / plain.cpuMicros).toFixed(2) + "x",
      ]);
    }
    say(formatTable(["depth", "msgs per wake-up", "script CPU us/msg", "msg/s per Redis core", "bytes in/msg", "plain XADD us/msg", "script / XADD"], rows));
    say(`(redis-server ${probe.version}, own process, no persistence; depth: messages per pipeline, what one wake-up of Redis reads)`);
  } catch (error) {
    say(`skipped: ${(error as Error).message}`);
  } finally {
    redis.disconnect();
    if (typeof probe !== "string") await probe.close();
    await own.destroy();
  }
}
