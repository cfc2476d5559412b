import t from "tap";
import { workerCount } from "../../src/app/worker-count.js";
import { loadConfig } from "../../src/config/index.js";

t.test("workers: default 1 (no cluster), a number as it is, auto one per core", async (t) => {
  t.equal(workerCount(loadConfig({})), 1);
  t.equal(workerCount({ workers: 3 }), 3);
  t.equal(workerCount({ workers: "auto" }, () => 8), 8);
  t.equal(workerCount({ workers: "auto" }, () => 0), 1, "never fewer than one");
});

t.test("POSTERN_WORKERS sets it; anything else is refused naming the key and the variable", async (t) => {
  t.equal(loadConfig({ POSTERN_WORKERS: "4" }).workers, 4);
  t.equal(loadConfig({ POSTERN_WORKERS: "auto" }).workers, "auto");
  t.throws(() => loadConfig({ POSTERN_WORKERS: "0" }), { name: "ConfigError", message: /workers \(from POSTERN_WORKERS\)/ });
  t.throws(() => loadConfig({ POSTERN_WORKERS: "many" }), { name: "ConfigError", message: /workers \(from POSTERN_WORKERS\)/ });
});
