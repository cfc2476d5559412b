import t from "tap";
import { startGateway } from "../helpers/gateway.js";
import { spawnTs } from "../helpers/process.js";

// The file's time, as long as its tests may take together (.taprc's 120 s would cut them short).
t.setTimeout(300_000);

const IDLE = 1000;
const SLOWLORIS = 800;
const SLOWBODY = 200;
const HANDSHAKE_TIMEOUT_S = 8;
const HEADERS_TIMEOUT_S = 10;
const REQUEST_TIMEOUT_S = 14;

interface GeneratorEvent {
  event: "held" | "done";
  open: number;
  failed?: number;
  closes?: Record<"idle" | "slowloris" | "slowbody", number[]>;
}

/** Runs `send` sequentially `n` times; the 99th percentile latency in ms. */
async function p99Of(n: number, send: (i: number) => Promise<unknown>): Promise<number> {
  const latencies: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    await send(i);
    latencies.push(performance.now() - started);
  }
  latencies.sort((a, b) => a - b);
  return latencies[Math.ceil(latencies.length * 0.99) - 1]!;
}

function lines(child: ReturnType<typeof spawnTs>): AsyncGenerator<GeneratorEvent> {
  let buffer = "";
  const queue: GeneratorEvent[] = [];
  let wake: (() => void) | undefined;
  child.stdout!.on("data", (d) => {
    buffer += d;
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      queue.push(JSON.parse(buffer.slice(0, nl)) as GeneratorEvent);
      buffer = buffer.slice(nl + 1);
      wake?.();
    }
  });
  return (async function* () {
    for (;;) {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      yield queue.shift()!;
    }
  })();
}

t.test("2,000 idle and slow connections are cut at their timeouts while a legitimate client keeps getting 202 fast", { timeout: 300_000 }, async (t) => {
  const gw = await startGateway({
    tls: { handshakeTimeoutSeconds: HANDSHAKE_TIMEOUT_S, handshakesPerSecondPerAddress: 0 },
    limits: {
      headersTimeoutSeconds: HEADERS_TIMEOUT_S,
      requestTimeoutSeconds: REQUEST_TIMEOUT_S,
      maxConnectionsPerAddress: 0,
      maxConnectionsPerIdentity: 0,
    },
  });
  t.teardown(() => gw.stop());
  const client = await gw.client();
  t.equal((await client.send("/v1/messages/warm", "{}")).status, 202, "the legitimate client is connected before the attack");
  const baseline = await p99Of(400, (i) => client.send(`/v1/messages/quiet-${i}`, JSON.stringify({ i })));

  const generator = spawnTs("test/helpers/slow-clients.ts", [String(gw.addresses.data.port), gw.certs, String(IDLE), String(SLOWLORIS), String(SLOWBODY)]);
  t.teardown(() => void generator.kill("SIGKILL"));
  const events = lines(generator);
  const held = (await events.next()).value as GeneratorEvent;
  t.equal(held.event, "held");
  t.equal(held.failed, 0, "every connection was accepted (no cap was in the way)");
  t.ok(held.open > IDLE, `${held.open} connections held open at once`);

  const p99 = await p99Of(400, async (i) => {
    const answer = await client.send(`/v1/messages/legit-${i}`, JSON.stringify({ i }));
    if (answer.status !== 202) t.fail(`request ${i}: ${answer.status}`);
  });
  t.comment(`legitimate client p99: ${p99.toFixed(1)} ms while ${held.open} connections are held; ${baseline.toFixed(1)} ms before`);
  // Under 100 ms on a quiet machine (about 20 ms measured here); on a shared, loaded one, within
  // a few times the same client's p99 measured just before, in the same run.
  const bound = Math.max(100, 5 * baseline);
  t.ok(p99 < bound, `legitimate p99 ${p99.toFixed(1)} ms under ${bound.toFixed(0)} ms while the connections are held`);

  const done = (await events.next()).value as GeneratorEvent;
  t.equal(done.open, 0, "the server cut every one of them");
  const within = (kind: "idle" | "slowloris" | "slowbody", timeoutS: number) => {
    const closes = done.closes![kind];
    const early = closes.filter((ms) => ms < timeoutS * 1000 - 500).length;
    const late = closes.filter((ms) => ms > (timeoutS + 15) * 1000).length;
    t.equal(early, 0, `${kind}: none cut before its ${timeoutS} s timeout`);
    t.equal(late, 0, `${kind}: all ${closes.length} cut soon after it (slowest ${Math.max(...closes)} ms)`);
  };
  within("idle", HANDSHAKE_TIMEOUT_S);
  within("slowloris", HEADERS_TIMEOUT_S);
  within("slowbody", REQUEST_TIMEOUT_S);

  const metrics = await (await fetch(`${gw.publicUrl}/metrics`)).text();
  const timeouts = Number(/postern_request_timeouts_total (\d+)/.exec(metrics)?.[1] ?? 0);
  t.ok(timeouts >= SLOWLORIS + SLOWBODY, `${timeouts} request timeouts counted`);
  t.match(metrics, /postern_tls_handshake_failures_total\{reason="timeout"\} \d+/);
});
