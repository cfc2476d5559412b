import { readFile } from "node:fs/promises";
import { join } from "node:path";
import t from "tap";
import { parse } from "yaml";
import { ROOT } from "../helpers/process.js";
import { findPromtool, PROMTOOL_HINT, runPromtool } from "../helpers/promtool.js";

const RULES = join(ROOT, "deploy/prometheus/rules.yaml");
const RULE_TESTS = join(ROOT, "deploy/prometheus/rules.test.yaml");

interface RuleTests {
  tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }> }>;
}

t.test("every alert in rules.yaml has a case where it fires and one where it must not", async (t) => {
  const rules = parse(await readFile(RULES, "utf8")) as { groups: Array<{ rules: Array<{ alert?: string }> }> };
  const alerts = rules.groups.flatMap((group) => group.rules.map((rule) => rule.alert).filter((a): a is string => a !== undefined));
  t.ok(alerts.length >= 13, `${alerts.length} alerts`);
  const cases = (parse(await readFile(RULE_TESTS, "utf8")) as RuleTests).tests.flatMap((test) => test.alert_rule_test ?? []);
  for (const alert of alerts) {
    const own = cases.filter((c) => c.alertname === alert);
    t.ok(own.some((c) => (c.exp_alerts ?? []).length > 0), `${alert} fires in a case`);
    t.ok(own.some((c) => (c.exp_alerts ?? []).length === 0), `${alert} stays quiet in a case`);
  }
  t.same(cases.map((c) => c.alertname).filter((name) => !alerts.includes(name)), [], "no case names an alert that does not exist");
});

t.test("promtool: rules.yaml is valid and its unit tests pass", async (t) => {
  const promtool = await findPromtool();
  if (!promtool) {
    t.comment(`SKIPPED: promtool not found in PATH or the cache: ${PROMTOOL_HINT}`);
    t.pass("skipped: no promtool", { skip: "promtool is not installed" });
    return;
  }
  const check = await runPromtool(promtool, ["check", "rules", RULES]);
  t.equal(check.code, 0, check.output);
  const test = await runPromtool(promtool, ["test", "rules", RULE_TESTS]);
  t.equal(test.code, 0, test.output);
  t.match(test.output, /SUCCESS/);
  t.comment(`promtool check rules: exit ${check.code} (${/\d+ rules found/.exec(check.output)?.[0] ?? "?"}); promtool test rules: exit ${test.code}`);
});
