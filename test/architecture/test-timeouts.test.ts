import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import t from "tap";
import { ROOT } from "../helpers/process.js";

/** A millisecond amount as the tests write it: `120_000`, `20 * 60_000`. */
function millis(text: string): number {
  return text.split("*").reduce((product, factor) => product * Number(factor.replace(/[_\s]/g, "")), 1);
}

/** Every test file under `dir`. */
function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? testFiles(path) : entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

/**
 * What a test file's own timeout must cover: the file runs its tests one after the other, so
 * when they may take longer together than .taprc's per-file timeout, the runner would kill the
 * file while a test is still inside its own allowance (a Sentinel failover in CI: all checks
 * passed at 106 s, the file was killed in its teardown at 120 s).
 */
export function timeoutProblem(source: string, fileTimeoutMs: number): string | undefined {
  const tests = [...source.matchAll(/^t\.test\([^\n]*\{ ?timeout: ([0-9_ *]+)[,}]/gm)].reduce((sum, m) => sum + millis(m[1]!), 0);
  if (tests <= fileTimeoutMs) return undefined;
  const own = /^t\.setTimeout\(([0-9_ *]+)\)/m.exec(source);
  const allowed = own ? millis(own[1]!) : fileTimeoutMs;
  return allowed >= tests ? undefined : `its tests may take ${tests / 1000} s together, the file ${allowed / 1000} s`;
}

t.test("a file's timeout covers the timeouts of its tests together", async (t) => {
  const fileTimeoutMs = Number(/^timeout: (\d+)$/m.exec(readFileSync(join(ROOT, ".taprc"), "utf8"))![1]) * 1000;
  t.equal(fileTimeoutMs, 120_000, "(.taprc's per-file timeout, as read here)");
  const problems = testFiles(join(ROOT, "test")).flatMap((path) => {
    const problem = timeoutProblem(readFileSync(path, "utf8"), fileTimeoutMs);
    return problem ? [`${relative(ROOT, path)}: ${problem}`] : [];
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
