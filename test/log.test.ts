import t from "tap";
import { createLogger, logSampler, prettyDestination } from "../src/log.js";

function captured(level?: "debug" | "info" | "warn") {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({ ...(level ? { level } : {}), pretty: false, destination: { write: (line: string) => void lines.push(JSON.parse(line)) } });
  return { log, lines };
}

t.test("pino's shape: numeric level, msg, pid, hostname, time; fields beside them", async (t) => {
  const { log, lines } = captured();
  log.info("hello", { route: "r" });
  t.match(lines[0], { level: 30, msg: "hello", route: "r", pid: process.pid });
  t.type(lines[0]!.hostname, "string");
  t.match(String(lines[0]!.time), /^\d{4}-\d\d-\d\dT/);
});

t.test("the level setting drops lower lines", async (t) => {
  const { log, lines } = captured("warn");
  log.info("not shown");
  log.warn("shown");
  t.same(lines.map((l) => l.msg), ["shown"]);
});

t.test("bodies, keys, tokens, passphrases and signatures are never written", async (t) => {
  const { log, lines } = captured();
  log.info("oops", { token: "t0k3n", body: "payload", passphrase: "p", nested: { signature: "sig1=:x:", key: "-----BEGIN" }, route: "kept" });
  const text = JSON.stringify(lines[0]);
  for (const secret of ["t0k3n", "payload", '"p"', "sig1=", "BEGIN"]) t.notOk(text.includes(secret), secret);
  t.equal(lines[0]!.route, "kept");
});

t.test("pretty lines for a terminal", async (t) => {
  let out = "";
  prettyDestination((s) => void (out += s)).write(JSON.stringify({ level: 40, time: "2026-12-01T10:11:12.345Z", pid: 1, hostname: "h", msg: "careful", reason: "no_cert" }) + "\n");
  t.equal(out, "10:11:12.345 WARN  careful reason=no_cert\n");
});

t.test("the sampler lets N a second through per key and reports what it held back", async (t) => {
  let now = 0;
  const sample = logSampler(2, () => now);
  const seen: number[] = [];
  for (let i = 0; i < 5; i++) sample("a", (suppressed) => seen.push(suppressed));
  sample("b", (suppressed) => seen.push(100 + suppressed));
  t.same(seen, [0, 0, 100], "two of five for a, b has its own budget");
  now = 1500;
  sample("a", (suppressed) => seen.push(suppressed));
  t.same(seen, [0, 0, 100, 3], "the next window's first line says three were held back");
});
