/**
 * `workers: 2`: two node:cluster workers share the data listener, the primary keeps the state.
 * Every promise of one process must hold across them: one 202 and one stored entry per
 * distinct message under a load spread over both (embedded and Redis mode), a replay sent to
 * the other worker refused, a revocation closing the certificate's connections on both, one
 * metrics scrape for all, a killed worker replaced, and SIGTERM draining both before exit 0.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import type { PosternClient, PreparedMessage } from "../../src/client/index.js";
import { finished, spawnTs } from "../helpers/process.js";
import { findPromtool, PROMTOOL_HINT, runPromtool } from "../helpers/promtool.js";
import { TEST_REDIS_URL, useTestRedis } from "../helpers/redis.js";
import { adminClient, type ClusterGateway, demoClient, eventually, exchange, issueClient, openTls, pidOfRequest, startClusterGateway } from "../helpers/workers.js";

// Three gateways of three processes each, on a machine that may be busy.
t.setTimeout(600_000);

const DISTINCT = 150;
const ROUTES_YAML = `routes:
  - { name: messages, method: POST, path: "/v1/messages/:topic", backend: messages, allow: { roles: [client] } }
  - { name: extra, method: POST, path: "/v1/extra/:topic", backend: messages, allow: { roles: [client] } }
`;
const COPIES = 3;

/** Sends every message COPIES times at once over many keep-alive connections; returns the answers per message. */
async function spreadLoad(client: PosternClient, count: number) {
  const messages = Array.from({ length: count }, (_, i) => client.prepare(`/v1/messages/load`, JSON.stringify({ n: i })));
  const answers = await Promise.all(messages.map((m) => Promise.all(Array.from({ length: COPIES }, () => client.dispatch(m)))));
  return { messages, answers };
}

function countStatuses(answers: Array<Array<{ status: number }>>): { exactlyOneAccepted: number; others: Map<number, number> } {
  let exactlyOneAccepted = 0;
  const others = new Map<number, number>();
  for (const copies of answers) {
    if (copies.filter((a) => a.status === 202).length === 1) exactlyOneAccepted += 1;
    for (const a of copies) if (a.status !== 202) others.set(a.status, (others.get(a.status) ?? 0) + 1);
  }
  return { exactlyOneAccepted, others };
}

/** The pids whose access log lines answered 202 on the data listener. */
function acceptingPids(gw: ClusterGateway): Set<number> {
  return new Set(gw.lines().flatMap((l) => (l.msg === "request" && l.listener === "data" && l.status === 202 && typeof l.pid === "number" ? [l.pid] : [])));
}

/** Two one-connection clients whose connections landed on different workers. */
async function clientsOnBothWorkers(gw: ClusterGateway, path = "/v1/messages/probe"): Promise<Array<{ client: PosternClient; pid: number }>> {
  const found = new Map<number, PosternClient>();
  for (let i = 0; i < 20 && found.size < 2; i++) {
    const client = await demoClient(gw);
    const answer = await client.dispatch(client.prepare(path, JSON.stringify({ probe: i })));
    const pid = await pidOfRequest(gw, String(answer.headers["x-request-id"]));
    if (found.has(pid)) await client.close();
    else found.set(pid, client);
  }
  return [...found].map(([pid, client]) => ({ pid, client }));
}

/** The same signed request again, for a client bound to another connection (same host and URL). */
function resend(message: PreparedMessage): PreparedMessage {
  return { ...message, headers: { ...message.headers } };
}

t.test("embedded mode, 2 workers: one 202 and one stored entry per message, replays refused across workers, revocation on both, one scrape, a killed worker replaced, SIGTERM drains both", async (t) => {
  const gw = await startClusterGateway(t, { workers: 2 });
  t.equal(gw.workerPids.length, 2, "the banner names two workers");

  const load = await demoClient(gw, 32);
  t.teardown(() => load.close());
  const { messages, answers } = await spreadLoad(load, DISTINCT);
  const { exactlyOneAccepted, others } = countStatuses(answers);
  t.equal(exactlyOneAccepted, DISTINCT, "exactly one 202 per distinct message");
  t.same([...others], [[409, DISTINCT * (COPIES - 1)]], "every other copy is 409 replayed");
  const accepted = await eventually(() => {
    const pids = acceptingPids(gw);
    return pids.size === 2 ? pids : undefined;
  });
  t.same([...accepted].sort(), [...gw.workerPids].sort(), "both workers answered 202s (access log pids)");

  const stored = (await readFile(join(gw.dir, "data", "messages.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l) as { fields: Record<string, string> });
  const ids = stored.map((e) => e.fields["message-id"]);
  t.equal(stored.length, DISTINCT, "exactly one stored entry per message");
  t.equal(new Set(ids).size, DISTINCT, "each a different message");
  const acceptedIds = answers.map((copies) => (copies.find((a) => a.status === 202)!.body as { id: string }).id);
  t.same(new Set(ids), new Set(acceptedIds), "the stored entries are the accepted messages");
  t.equal(messages.length, DISTINCT);

  // A replay sent to the other worker.
  const [one, other] = await clientsOnBothWorkers(gw);
  t.ok(one && other && one.pid !== other.pid, "two connections on two workers");
  t.teardown(() => Promise.all([one!.client.close(), other!.client.close()]));
  const message = one!.client.prepare("/v1/messages/replay", JSON.stringify({ once: true }));
  t.equal((await one!.client.dispatch(message)).status, 202, "accepted by one worker");
  const again = await other!.client.dispatch(resend(message));
  t.equal(again.status, 409, "the same signed request to the other worker is refused");
  t.equal((again.body as { code: string }).code, "replayed");

  // One scrape for the cluster: counters summed over both workers.
  const metrics = await (await fetch(`http://127.0.0.1:${gw.publicPort}/metrics`)).text();
  const requests202 = Number(/postern_requests_total\{route="messages",outcome="accepted",status="202"\} (\d+)/.exec(metrics)?.[1]);
  t.ok(requests202 >= DISTINCT + 3, `the 202s of both workers in one counter (${requests202})`);
  t.match(metrics, /^postern_workers 2$/m, "two workers live");
  t.equal(metrics.match(/^# TYPE postern_requests_total /gm)?.length, 1, "one family, not one per worker");
  t.match(metrics, /^postern_build_info\{[^}]*\} 1$/m, "build info is not summed");
  const promtool = await findPromtool();
  if (promtool) {
    const lint = await runPromtool(promtool, ["check", "metrics"], metrics);
    t.equal(lint.code, 0, `promtool check metrics passes on the merged scrape: ${lint.output}`);
  } else t.comment(`promtool check of the merged scrape skipped: ${PROMTOOL_HINT}`);

  // A revocation closes the certificate's connections on both workers.
  const admin = await adminClient(gw);
  t.teardown(() => admin.close());
  const leaf = await issueClient(admin, "held");
  const ca = await readFile(join(gw.certs, "ca-bundle.pem"), "utf8");
  const held = new Map<number, Awaited<ReturnType<typeof openTls>>>();
  for (let i = 0; i < 20 && held.size < 2; i++) {
    const socket = await openTls(gw, leaf.cert, leaf.key, ca);
    const pid = await pidOfRequest(gw, await exchange(socket));
    if (held.has(pid)) socket.destroy();
    else held.set(pid, socket);
  }
  t.equal(held.size, 2, "the certificate holds a connection on each worker");
  const closed = [...held.values()].map((s) => new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once("close", () => resolve()))));
  await admin.revoke(leaf.serial, "keyCompromise");
  await Promise.all(closed);
  for (const socket of held.values()) t.equal(await exchange(socket), "closed", "closed by the worker that held it");

  // A killed worker is replaced, and the gateway keeps answering meanwhile.
  const victim = gw.workerPids[0]!;
  process.kill(victim, "SIGKILL");
  // Once the primary has seen it die (a connection dealt to it before that would be lost with it).
  await eventually(() => (gw.lines().some((l) => l.msg === "a worker died; replacing it" && l.workerPid === victim) ? true : undefined));
  const during = await demoClient(gw, 4);
  t.teardown(() => during.close());
  const whileReplacing = await Promise.all(Array.from({ length: 20 }, (_, i) => during.dispatch(during.prepare("/v1/messages/kill", JSON.stringify({ i })))));
  t.ok(whileReplacing.every((a) => a.status === 202), `every message accepted while a worker is replaced: ${whileReplacing.map((a) => a.status).join(",")}`);
  const after = await eventually(async () => {
    const text = await (await fetch(`http://127.0.0.1:${gw.publicPort}/metrics`)).text();
    return /^postern_workers 2$/m.test(text) ? text : undefined;
  }, 60_000);
  t.match(after, /^postern_worker_restarts_total\{reason="crash"\} 1$/m, "the replacement is logged and counted");
  const ready = (await (await fetch(`http://127.0.0.1:${gw.publicPort}/readyz`)).json()) as { workers: { live: number } };
  t.equal(ready.workers.live, 2, "readiness reports both workers");

  // SIGTERM: both workers drain and exit, then the primary, with 0.
  const livePids = await eventually(() => {
    const pids = gw.lines().filter((l) => l.msg === "request" && typeof l.pid === "number").map((l) => l.pid as number);
    return pids.length > 0 ? pids : undefined;
  });
  t.ok(livePids.length > 0);
  gw.child.kill("SIGTERM");
  const { code } = await gw.done;
  t.equal(code, 0, "the primary exits 0");
  const stoppedWorkers = gw.lines().filter((l) => l.msg === "worker stopped" && l.reason === "drain").map((l) => l.pid);
  t.equal(stoppedWorkers.length, 2, "both workers drained on the primary's word");
  const lines = gw.lines();
  const lastWorkerStop = lines.map((l) => l.msg).lastIndexOf("worker stopped");
  t.ok(lines.findIndex((l) => l.msg === "stopped") > lastWorkerStop, "the primary stopped after its workers");
  for (const pid of stoppedWorkers) t.throws(() => process.kill(pid as number, 0), "the worker process is gone");
});

t.test("Redis mode, 2 workers: one 202 and one stream entry per message, a replay refused by the other worker, SIGHUP reloads both", async (t) => {
  const { redis, keyPrefix } = await useTestRedis(t);
  const redisYaml = `redis:\n  url: ${TEST_REDIS_URL}\n  keyPrefix: "${keyPrefix}"\n`;
  const gw = await startClusterGateway(t, { workers: 2, configYaml: redisYaml });
  const load = await demoClient(gw, 32);
  t.teardown(() => load.close());
  const { answers } = await spreadLoad(load, DISTINCT);
  const { exactlyOneAccepted, others } = countStatuses(answers);
  t.equal(exactlyOneAccepted, DISTINCT, "exactly one 202 per distinct message");
  t.same([...others], [[409, DISTINCT * (COPIES - 1)]], "every other copy is 409 replayed");
  t.equal(await redis.xlen(`${keyPrefix}{messages}:messages`), DISTINCT, "exactly one stream entry per message");
  const accepted = await eventually(() => {
    const pids = acceptingPids(gw);
    return pids.size === 2 ? pids : undefined;
  });
  t.same([...accepted].sort(), [...gw.workerPids].sort(), "both workers answered 202s");

  const [one, other] = await clientsOnBothWorkers(gw);
  t.ok(one && other && one.pid !== other.pid, "two connections on two workers");
  t.teardown(() => Promise.all([one!.client.close(), other!.client.close()]));
  const message = one!.client.prepare("/v1/messages/replay", JSON.stringify({ once: true }));
  t.equal((await one!.client.dispatch(message)).status, 202);
  t.equal((await other!.client.dispatch(resend(message))).status, 409, "the other worker refuses the replay");

  // SIGHUP to the primary reaches every worker: each applies the new routes.
  const extra = () => Promise.all([one!, other!].map(({ client }) => client.dispatch(client.prepare("/v1/extra/x", JSON.stringify({ extra: true })))));
  t.same((await extra()).map((a) => a.status), [404, 404], "no such route yet, on either worker");
  await writeFile(join(gw.dir, "postern.yaml"), `${redisYaml}${ROUTES_YAML}`);
  gw.child.kill("SIGHUP");
  await eventually(() => {
    const reloaded = new Set(gw.lines().filter((l) => l.msg === "worker configuration reloaded").map((l) => l.pid));
    return gw.workerPids.every((pid) => reloaded.has(pid)) ? true : undefined;
  });
  t.same((await extra()).map((a) => a.status), [202, 202], "both workers serve the new route");

  gw.child.kill("SIGTERM");
  t.equal((await gw.done).code, 0, "SIGTERM: exit 0");
});

t.test("a worker that cannot start fails the start, naming it", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "postern-workers-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // 192.0.2.1 (TEST-NET-1) is on no interface here: listening there fails in every worker.
  const child = spawnTs("src/main.ts", [], {
    cwd: dir,
    env: { POSTERN_WORKERS: "2", POSTERN_DATA_HOST: "192.0.2.1", POSTERN_DATA_PORT: "0", POSTERN_ADMIN_PORT: "0", POSTERN_PUBLIC_PORT: "0" },
  });
  const { code, stdout, stderr } = await finished(child);
  t.equal(code, 1, "the start fails");
  t.notMatch(stdout, /npx postern send/, "no banner");
  t.match(stderr, /postern: worker cannot start: .*192\.0\.2\.1/, "the worker says why");
  t.match(stderr, /postern: cannot start: worker \d ended during start/, "the primary names the worker");
  t.notMatch(stderr, /^\s+at /m, "no stack");
});

t.test("embedded mode, 2 workers: a route's rate limit holds across both (one bucket, in the primary)", async (t) => {
  const gw = await startClusterGateway(t, {
    workers: 2,
    configYaml: `routes:\n  - { name: messages, method: POST, path: "/v1/messages/:topic", backend: messages, allow: { roles: [client] }, rateLimit: { requestsPerSecond: 0.001, burst: 4 } }\n`,
  });
  const [one, other] = await clientsOnBothWorkers(gw).catch(() => []);
  t.teardown(() => Promise.all([one?.client.close(), other?.client.close()]));
  // clientsOnBothWorkers spent tokens of its own while finding the two connections: count them.
  const probes = gw.lines().filter((l) => l.msg === "request" && l.listener === "data" && l.status === 202).length;
  t.ok(one && other && one.pid !== other.pid, "two connections on two workers");
  const statuses: number[] = [];
  for (let i = 0; i < 8; i++) {
    const { client } = i % 2 ? other! : one!;
    statuses.push((await client.dispatch(client.prepare("/v1/messages/limited", JSON.stringify({ i })))).status);
  }
  const accepted = statuses.filter((s) => s === 202).length;
  t.equal(accepted + probes, 4, `the identity's burst of 4, once over both workers: ${statuses.join(",")} after ${probes} probes`);
  t.ok(statuses.filter((s) => s !== 202).every((s) => s === 429), "the rest are 429");
});

t.test("embedded mode, 2 workers, an HTTP backend: one forward per message, its nonce journalled once by the primary", async (t) => {
  const seen: string[] = [];
  const upstream = createHttpServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d));
    req.on("end", () => {
      seen.push(body);
      res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  t.teardown(() => new Promise<void>((resolve) => upstream.close(() => resolve())));
  const port = (upstream.address() as AddressInfo).port;
  const gw = await startClusterGateway(t, {
    workers: 2,
    configYaml: `backends:\n  svc: { type: http, url: "http://127.0.0.1:${port}" }\nroutes:\n  - { name: svc, method: POST, path: "/v1/svc/:topic", backend: svc, allow: { roles: [client] } }\n`,
  });
  const [one, other] = await clientsOnBothWorkers(gw, "/v1/svc/probe");
  t.ok(one && other && one.pid !== other.pid, "two connections on two workers");
  t.teardown(() => Promise.all([one!.client.close(), other!.client.close()]));
  const probes = seen.length;
  const messages = Array.from({ length: 20 }, (_, i) => one!.client.prepare("/v1/svc/x", JSON.stringify({ i })));
  const answers = await Promise.all(messages.flatMap((m) => [one!.client.dispatch(m), other!.client.dispatch(resend(m))]));
  const forwarded = answers.filter((a) => a.status === 200).length;
  t.equal(forwarded, 20, "one of each pair forwarded");
  t.equal(answers.filter((a) => a.status === 409).length, 20, "the copy on the other worker refused");
  t.equal(seen.length - probes, 20, "the upstream saw each message once");
  const journal = (await readFile(join(gw.dir, "data", "nonces.jsonl"), "utf8")).trim().split("\n");
  t.equal(journal.length, 20 + probes, "one claim per forwarded message in the primary's nonce journal");
});

t.test("embedded mode, 2 workers, a sealed route: each worker checks the JWE against the backend's public keys", async (t) => {
  const consumer = await mkdtemp(join(tmpdir(), "postern-workers-consumer-"));
  t.teardown(() => rm(consumer, { recursive: true, force: true }));
  const ring = join(consumer, "vault");
  const created = await finished(spawnTs("src/cli/main.ts", ["keys", "backend", "create", "vault", "--dir", ring], { cwd: consumer }));
  t.equal(created.code, 0, created.stderr);
  const jwks = join(ring, "jwks.json");
  const gw = await startClusterGateway(t, {
    workers: 2,
    configYaml: `backends:
  messages: { type: stream, stream: messages }
  vault: { type: stream, stream: vault, sealing: { publicKeys: "${jwks}" } }
routes:
  - { name: messages, method: POST, path: "/v1/messages/:topic", backend: messages, allow: { roles: [client] } }
  - { name: sealed, method: POST, path: "/v1/sealed/:topic", backend: vault, allow: { roles: [client] }, sealed: required }
`,
  });
  const [one, other] = await clientsOnBothWorkers(gw);
  t.ok(one && other && one.pid !== other.pid, "two connections on two workers");
  t.teardown(() => Promise.all([one!.client.close(), other!.client.close()]));
  for (const { client, pid } of [one!, other!]) {
    const sealed = await client.send("/v1/sealed/x", JSON.stringify({ secret: pid }), "application/json", { seal: jwks });
    t.equal(sealed.status, 202, `worker ${pid}: a sealed body is accepted`);
    const plain = await client.dispatch(client.prepare("/v1/sealed/x", JSON.stringify({ secret: pid })));
    t.equal(plain.status, 415, `worker ${pid}: a plain body on a sealed-required route is refused`);
    t.equal((plain.body as { code: string }).code, "sealed-required");
  }
  const stored = (await readFile(join(gw.dir, "data", "vault.jsonl"), "utf8")).trim().split("\n").map((line) => {
    const entry = JSON.parse(line) as { bodyEncoding?: string; fields: { body: string } };
    return entry.bodyEncoding === "base64" ? Buffer.from(entry.fields.body, "base64").toString() : entry.fields.body;
  });
  t.equal(stored.length, 2, "two sealed entries in the primary's file");
  for (const body of stored) {
    t.equal(body.split(".").length, 5, "a compact JWE, stored as sent");
    t.notMatch(body, /secret/, "no plaintext");
  }
});
