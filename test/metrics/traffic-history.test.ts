import t from "tap";
import { TrafficHistory } from "../../src/metrics/traffic-history.js";

t.test("outcomes per minute over the last hour; older minutes fall off", async (t) => {
  let now = Date.UTC(2026, 0, 1, 12, 0, 30);
  const history = new TrafficHistory(() => now);
  history.record("accepted");
  history.record("accepted");
  history.record("signature-invalid");
  now += 60_000;
  history.record("replayed");
  const hour = history.lastHour();
  t.equal(hour.length, 60);
  t.equal(hour[59]!.atMs, Date.UTC(2026, 0, 1, 12, 1));
  t.same(hour[59]!.outcomes, { replayed: 1 });
  t.same(hour[58]!.outcomes, { accepted: 2, "signature-invalid": 1 });
  t.same(hour[0]!.outcomes, {});
  now += 59 * 60_000;
  t.same(history.lastHour().find((m) => m.outcomes.accepted)?.outcomes, undefined, "an hour later the first minute is gone");
  t.same(history.lastHour()[0]!.outcomes, { replayed: 1 }, "the second minute is the oldest shown");
});
