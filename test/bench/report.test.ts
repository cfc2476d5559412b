import t from "tap";
import { goalValueText } from "../../bench/gateway/report.js";

t.test("goal values: a ratio with two digits, microseconds whole, milliseconds and KB with one", async (t) => {
  t.equal(goalValueText(8.214, "x"), "8.21x");
  t.equal(goalValueText(72.5, "us"), "73 us");
  t.equal(goalValueText(46.74, "ms"), "46.7 ms");
  t.equal(goalValueText(74.93, "KB"), "74.9 KB");
});

t.test("a value just past its goal shows the digit that misses it; one that meets it does not", async (t) => {
  t.equal(goalValueText(2167 / 1967, "x", 1.1), "1.102x", "would read 1.10x against 1.10x");
  t.equal(goalValueText(1.1, "x", 1.1), "1.10x", "exactly the goal meets it");
  t.equal(goalValueText(1.096, "x", 1.1), "1.10x", "under the goal: no extra digit");
  t.equal(goalValueText(40.3, "us", 40), "40.3 us");
  t.equal(goalValueText(10.04, "ms", 10), "10.04 ms");
  t.equal(goalValueText(9.2, "x", 2.8), "9.20x", "far from the goal: as usual");
});
