import t from "tap";
import { parseCommandStats } from "../../bench/gateway/redis-probe.js";

t.test("INFO commandstats gives calls and microseconds per command", async (t) => {
  const info = "# Commandstats\r\ncmdstat_evalsha:calls=116968,usec=9013585,usec_per_call=77.06,rejected_calls=0,failed_calls=5\r\ncmdstat_xgroup|create:calls=60,usec=1328,usec_per_call=22.13\r\n";
  t.same([...parseCommandStats(info)], [["evalsha", { calls: 116968, usec: 9013585 }], ["xgroup|create", { calls: 60, usec: 1328 }]]);
  t.same([...parseCommandStats("# Commandstats\r\n")], []);
});
