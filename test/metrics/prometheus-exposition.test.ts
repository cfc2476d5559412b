import { readFile } from "node:fs/promises";
import { join } from "node:path";
import t from "tap";
import { PrometheusRecorder } from "../../src/metrics/prometheus.js";
import { startGateway } from "../helpers/gateway.js";
import { ROOT } from "../helpers/process.js";
import { findPromtool, PROMTOOL_HINT, runPromtool } from "../helpers/promtool.js";

/** Names of the families the exposition declares as gauges. */
const gaugeNames = (text: string) => [...text.matchAll(/^# TYPE (\S+) gauge$/gm)].map((m) => m[1]!);

/** A recorder with every family that appears only in some mode or after some event populated. */
function everyFamily(): PrometheusRecorder {
  const recorder = new PrometheusRecorder();
  recorder.request("messages", "accepted", 202);
  recorder.request("messages", "replayed", 409);
  for (const stage of ["request", "verify", "replay_claim", "forward"] as const) recorder.observeSeconds(stage, 0.002);
  recorder.handshake();
  recorder.handshakeFailure("unknown_ca");
  recorder.connectionOpened();
  recorder.connectionRefused("address_limit");
  recorder.connectionEnded("revoked");
  recorder.requestTimedOut();
  recorder.uncaughtError();
  recorder.redisAvailable(true);
  recorder.storageUp(true);
  recorder.storageFailure("no_space");
  recorder.backendRequest("orders", "ok", 0.01);
  recorder.breakerState("orders", "half-open");
  recorder.revocationPropagated(0.05);
  recorder.certificateIssued("issued", Date.now() + 3_600_000);
  recorder.certificateRevoked("keyCompromise");
  recorder.expiresAt("ca", Date.now() + 86_400_000);
  recorder.expiresAt("crl", Date.now() + 86_400_000);
  return recorder;
}

t.test("postern_build_info: 1, labelled with package.json's version and the running node", async (t) => {
  const { version } = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { version: string };
  const text = await new PrometheusRecorder({ defaultMetrics: false }).metrics();
  t.match(text, `\npostern_build_info{version="${version}",node="${process.version}"} 1\n`);
  t.match(text, "# TYPE postern_build_info gauge");
  const injected = await new PrometheusRecorder({ defaultMetrics: false, build: { version: "9.9.9", node: "v1.0.0" } }).metrics();
  t.match(injected, '\npostern_build_info{version="9.9.9",node="v1.0.0"} 1\n');
});

t.test("no gauge is named *_total; the per-type process gauges stay", async (t) => {
  const text = await everyFamily().metrics();
  t.same(gaugeNames(text).filter((name) => name.endsWith("_total")), [], "the _total suffix is for counters");
  t.ok(gaugeNames(text).includes("postern_nodejs_active_handles"), "active handles by type: the dropped total is their sum");
  t.match(text, /^postern_nodejs_active_handles\{type="[A-Za-z]+"\} \d+$/m);
  t.match(text, /^postern_process_cpu_seconds_total \S+$/m, "default process metrics still come");
});

t.test("promtool check metrics passes on a running gateway's /metrics and on every family", async (t) => {
  const promtool = await findPromtool();
  if (!promtool) {
    t.comment(`SKIPPED: promtool not found in PATH or the cache: ${PROMTOOL_HINT}`);
    t.pass("skipped: no promtool", { skip: "promtool is not installed" });
    return;
  }
  const gw = await startGateway();
  t.teardown(() => gw.stop());
  const client = await gw.client();
  t.equal((await client.send("/v1/messages/lint", JSON.stringify({ n: 1 }))).status, 202);
  const scraped = await fetch(`${gw.publicUrl}/metrics`);
  t.match(scraped.headers.get("content-type"), /^text\/plain; version=0\.0\.4/);
  const gateway = await runPromtool(promtool, ["check", "metrics"], await scraped.text());
  t.equal(gateway.code, 0, `the gateway's /metrics: ${gateway.output}`);
  t.equal(gateway.output.trim(), "", "no lint findings");

  const all = await runPromtool(promtool, ["check", "metrics"], await everyFamily().metrics());
  t.equal(all.code, 0, `every family: ${all.output}`);
  t.equal(all.output.trim(), "", "no lint findings");
  t.comment(`promtool check metrics: exit ${gateway.code} on the gateway's /metrics, exit ${all.code} with every family populated`);
});
