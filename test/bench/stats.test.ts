import t from "tap";
import { median, minimum, percentile, slope, summarizeLatencies } from "../../bench/gateway/stats.js";

t.test("percentiles are nearest-rank: always a value that occurred", async (t) => {
  const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
  t.equal(percentile(sorted, 50), 50);
  t.equal(percentile(sorted, 99), 99);
  t.equal(percentile(sorted, 100), 100);
  t.equal(percentile([7], 99), 7);
  t.ok(Number.isNaN(percentile([], 50)));
});

t.test("median and minimum of repeated runs", async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.equal(minimum([3, 1, 2]), 1);
  t.ok(Number.isNaN(median([])));
});

t.test("latency summary sorts and picks p50, p99 and max", async (t) => {
  const latencies = Float64Array.from({ length: 200 }, (_, i) => 200 - i);
  t.same(summarizeLatencies(latencies), { p50Ms: 100, p99Ms: 198, maxMs: 200 });
});

t.test("slope is the least-squares fit, NaN without two distinct x", async (t) => {
  t.equal(slope([[0, 1], [1, 3], [2, 5]]), 2);
  t.equal(slope([[500, 100], [1000, 150], [1500, 190], [2000, 250]]), 0.098);
  t.ok(Number.isNaN(slope([[1, 1]])));
  t.ok(Number.isNaN(slope([[1, 1], [1, 2]])));
});
