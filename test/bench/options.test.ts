import t from "tap";
import { parseBenchArgs, TARGETS } from "../../bench/options.js";

t.test("no arguments: every section, every target, the documented defaults", async (t) => {
  const args = parseBenchArgs([]);
  t.same(args.sections, ["signing", "sealed", "gateway", "redis", "pki", "cli"]);
  t.match(args.gateway, { messages: 8000, connections: 32, bodyBytes: 1024, algorithm: "P-256", repeats: 3, redisUrl: "redis://127.0.0.1:6379" });
  t.same(args.gateway.targets, [...TARGETS]);
});

t.test("sections and flags as the README shows them", async (t) => {
  const args = parseBenchArgs(["gateway", "--messages", "4000", "--only", "embedded,bare", "--algorithm", "ed25519", "--idle-connections", "0"]);
  t.same(args.sections, ["gateway"]);
  t.equal(args.gateway.messages, 4000);
  t.same(args.gateway.targets, ["bare", "embedded"], "in the bench's order");
  t.equal(args.gateway.algorithm, "Ed25519");
  t.equal(args.gateway.idleConnections, 0);
  t.equal(parseBenchArgs([], { POSTERN_TEST_REDIS_URL: "redis://10.0.0.2:6379" }).gateway.redisUrl, "redis://10.0.0.2:6379");
});

t.test("a bad section, target, algorithm or number is refused, naming the argument", async (t) => {
  const cases: Array<[string[], string]> = [
    [["gatway"], "section"],
    [["--only", "haproxy"], "--only"],
    [["--only", ","], "--only"],
    [["--algorithm", "P-521"], "--algorithm"],
    [["--messages", "1e3x"], "--messages"],
    [["--connections", "0"], "--connections"],
    [["--idle-connections", "-1"], "--idle-connections"],
    [["--bogus"], "--bogus"],
  ];
  for (const [argv, argument] of cases) {
    t.throws(() => parseBenchArgs(argv), { name: "BenchUsageError", argument }, argv.join(" "));
  }
});
