import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { configJsonSchema } from "../../src/config/json-schema.js";
import { finished, ROOT, spawnTs } from "../helpers/process.js";

const cli = (args: string[], env: Record<string, string> = {}) => finished(spawnTs("src/cli/main.ts", args, { env }));

t.test("--version names the package version", async (t) => {
  const { version } = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { version: string };
  const result = await cli(["--version"]);
  t.equal(result.code, 0);
  t.match(result.stdout, new RegExp(`^postern ${version.replace(/\./g, "\\.")} \\(node v\\d+`));
});

t.test("config check: ok for the shipped defaults; a bad file exits 2 naming the key, line and column", async (t) => {
  const ok = await cli(["config", "check"], { POSTERN_CONFIG: join(ROOT, "config", "postern.yaml") });
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout, /^ok: .*postern\.yaml, embedded mode, 1 route, 1 backend\n$/);
  const dir = await mkdtemp(join(tmpdir(), "postern-config-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, "bad.yaml"), "limits:\n  maxHeaderCount: 3\nlisteners:\n  data:\n    port: abc\n");
  const bad = await cli(["config", "check"], { POSTERN_CONFIG: join(dir, "bad.yaml") });
  t.equal(bad.code, 2);
  t.match(bad.stderr, /limits\.maxHeaderCount \(line 2, column 19\)/);
  t.match(bad.stderr, /listeners\.data\.port \(line 5, column 11\)/);
  t.notMatch(bad.stderr, /\n\s+at /, "no stack trace");
  await writeFile(join(dir, "broken.yaml"), "listeners:\n  data: [\n");
  const broken = await cli(["config", "check"], { POSTERN_CONFIG: join(dir, "broken.yaml") });
  t.equal(broken.code, 2);
  t.match(broken.stderr, /broken\.yaml \(line \d+, column \d+\): not valid YAML/);
  const json = await cli(["config", "check", "--json"], { POSTERN_CONFIG: join(ROOT, "config", "postern.yaml"), POSTERN_DATA_PORT: "9443" });
  t.equal(JSON.parse(json.stdout).listeners.data.port, 9443, "--json prints the resolved configuration, environment included");
});

t.test("the shipped JSON Schema is the one generated from the config schema", async (t) => {
  const shipped = JSON.parse(await readFile(join(ROOT, "config", "postern.schema.json"), "utf8"));
  t.same(shipped, configJsonSchema(), "regenerate with: node dist/cli/main.js config schema > config/postern.schema.json");
  const printed = await cli(["config", "schema"]);
  t.same(JSON.parse(printed.stdout), shipped);
});

t.test("start refuses options it does not know, and documents the ones it has", async (t) => {
  const bogus = await cli(["start", "--bogus", "--port", "1"]);
  t.equal(bogus.code, 2);
  t.match(bogus.stderr, /Unknown option '--bogus'/);
  t.match(bogus.stderr, /postern start \[--config FILE\]/);
  const help = await cli(["start", "--help"]);
  t.equal(help.code, 0);
  t.match(help.stdout, /--config FILE/);
});
