import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { AuditLog } from "../../src/pki/audit/audit.js";
import { finished, spawnTs } from "../helpers/process.js";

t.setTimeout(240_000);

const dir = await mkdtemp(join(tmpdir(), "postern-cli-audit-"));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const logFile = join(dir, "audit.jsonl");
const log = await AuditLog.open(logFile);
for (let i = 1; i <= 4; i++) await log.append({ actor: "admin", action: "token.create", subject: `spiffe://postern.local/client/${i}` });
await log.close();
const lines = (await readFile(logFile, "utf8")).split("\n"); // four lines and a final ""

const verify = (args: string[]) => finished(spawnTs("src/cli/main.ts", ["audit", ...args]));

async function variant(name: string, edited: string[]): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, edited.join("\n"));
  return path;
}

t.test("an untouched log verifies: exit 0, line count and head", async (t) => {
  const result = await verify(["verify", "--file", logFile]);
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /^ok, 4 lines, head [0-9a-f]{64}\n +4  token.create\n$/);
});

t.test("a changed, deleted, reordered or malformed line exits 1 naming the line", async (t) => {
  const changed = lines.slice();
  changed[1] = changed[1]!.replace("client/2", "client/9");
  const deleted = lines.filter((_, i) => i !== 1);
  const reordered = [lines[0]!, lines[2]!, lines[1]!, lines[3]!, ""];
  const malformed = lines.slice();
  malformed[2] = "{not json";
  const cases = [
    ["changed", changed, /line 2: changed/],
    ["deleted", deleted, /line 2: deleted/],
    ["reordered", reordered, /line 2: reordered/],
    ["malformed", malformed, /line 3: malformed/],
  ] as const;
  const results = await Promise.all(cases.map(async ([name, edited]) => verify(["verify", "--file", await variant(`${name}.jsonl`, [...edited])])));
  cases.forEach(([name, , expected], i) => {
    t.equal(results[i]!.code, 1, name);
    t.match(results[i]!.stdout, expected, name);
  });
});

t.test("a missing file exits 1; a bad command line exits 2", async (t) => {
  const [missing, action, flag] = await Promise.all([
    verify(["verify", "--file", join(dir, "nope.jsonl")]),
    verify(["check"]),
    verify(["verify", "--bogus"]),
  ]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /no audit log at/);
  t.equal(action.code, 2);
  t.equal(flag.code, 2);
});
