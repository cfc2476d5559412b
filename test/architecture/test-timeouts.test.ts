import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { ROOT } from "../helpers/process.js";
import { timeoutProblem } from "./rules.js";

t.test("a file's timeout covers the timeouts of its tests together", async (t) => {
  const fileTimeoutMs = Number(/^timeout: (\d+)$/m.exec(readFileSync(join(ROOT, ".taprc"), "utf8"))![1]) * 1000;
  t.equal(fileTimeoutMs, 120_000, "(.taprc's per-file timeout, as read here)");
  const files = readdirSync(join(ROOT, "test"), { recursive: true, encoding: "utf8" }).filter((name) => name.endsWith(".test.ts"));
  const problems = files.flatMap((name) => {
    const problem = timeoutProblem(readFileSync(join(ROOT, "test", name), "utf8"), fileTimeoutMs);
    return problem ? [`test/${name}: ${problem}`] : [];
  });
  t.same(problems, []);
});

t.test("the check reads the tests' timeouts and the file's own", async (t) => {
  const tests = 't.test("a", { timeout: 90_000 }, async () => {});\nt.test("b", { timeout: 60_000 }, async () => {});\n';
  t.match(timeoutProblem(tests, 120_000), /150 s together, the file 120 s/);
  t.equal(timeoutProblem(`t.setTimeout(150_000);\n${tests}`, 120_000), undefined);
  t.equal(timeoutProblem(`t.setTimeout(3 * 60_000);\n${tests}`, 120_000), undefined);
  t.match(timeoutProblem(`t.setTimeout(140_000);\n${tests}`, 120_000), /the file 140 s/);
  t.equal(timeoutProblem('t.test("a", async () => {});\n', 120_000), undefined, "no timeouts of their own: nothing to cover");
});
