import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { finished, spawnTs, waitForOutput } from "../helpers/process.js";

t.test("a fresh start bootstraps the PKI, prints a send command that works, and stops cleanly", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "postern-start-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const env = { POSTERN_DATA_PORT: "0", POSTERN_ADMIN_PORT: "0", POSTERN_PUBLIC_PORT: "0" };
  const server = spawnTs("src/main.ts", [], { cwd: dir, env });
  const done = finished(server);
  const banner = await waitForOutput(server, /npx postern send .*\n/);
  t.match(banner, /embedded mode/);
  t.match(banner, /created now/);
  const command = /npx postern send (.*)\n/.exec(banner)![1]!;
  const args = [...command.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);

  const sent = await finished(spawnTs("src/cli/main.ts", ["send", ...args], { cwd: dir }));
  t.equal(sent.code, 0, sent.stderr);
  const answer = JSON.parse(sent.stdout);
  t.equal(answer.status, 202);
  const stored = await readFile(join(dir, "data", "messages.jsonl"), "utf8");
  t.match(stored, answer.id);

  server.kill("SIGTERM");
  const exit = await done;
  t.equal(exit.code, 0, "SIGTERM drains and exits 0");
  t.match(exit.stderr, /embedded mode/, "warns that the embedded mode is single-instance");
});

t.test("a listener port of \"abc\" stops startup with one message naming the key", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "postern-badconfig-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, "config"));
  await writeFile(join(dir, "config", "postern.yaml"), "listeners:\n  data:\n    port: abc\n");
  const result = await finished(spawnTs("src/main.ts", [], { cwd: dir }));
  t.equal(result.code, 2);
  t.match(result.stderr, /listeners\.data\.port/);
  t.notMatch(result.stderr, /\n\s+at /, "no stack trace");

  const fromEnv = await finished(spawnTs("src/main.ts", [], { cwd: dir, env: { POSTERN_CONFIG: "/nonexistent.yaml" } }));
  t.equal(fromEnv.code, 2);
  t.match(fromEnv.stderr, /nonexistent\.yaml/);

  await writeFile(join(dir, "config", "postern.yaml"), "listeners: {}\n");
  const badEnv = await finished(spawnTs("src/main.ts", [], { cwd: dir, env: { POSTERN_PUBLIC_PORT: "abc" } }));
  t.equal(badEnv.code, 2);
  t.match(badEnv.stderr, /listeners\.public\.port \(from POSTERN_PUBLIC_PORT\)/);
});

t.test("postern --help lists the commands", async (t) => {
  const result = await finished(spawnTs("src/cli/main.ts", ["--help"]));
  t.equal(result.code, 0);
  t.match(result.stdout, /start\s+run the gateway/);
  t.match(result.stdout, /send\s+sign a message/);
});

t.test("SIGTERM lets a request in flight finish, then exits 0", async (t) => {
  const { request } = await import("node:https");
  const { PosternClient } = await import("../../src/client/index.js");
  const dir = await mkdtemp(join(tmpdir(), "postern-drain-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const server = spawnTs("src/main.ts", [], { cwd: dir, env: { POSTERN_DATA_PORT: "0", POSTERN_ADMIN_PORT: "0", POSTERN_PUBLIC_PORT: "0" } });
  const done = finished(server);
  const banner = await waitForOutput(server, /npx postern send .*\n/);
  const port = Number(/data plane \(mTLS\)\s+https:\/\/[^:]+:(\d+)/.exec(banner)![1]);
  const certs = join(dir, "certs");
  const material = {
    cert: await readFile(join(certs, "demo-client.crt")),
    key: await readFile(join(certs, "demo-client.key")),
    ca: await readFile(join(certs, "ca-bundle.pem")),
  };
  const signer = new PosternClient({ url: `https://localhost:${port}`, ...material });
  const message = signer.prepare("/v1/messages/drain", JSON.stringify({ slow: "x".repeat(1000) }));
  await signer.close();

  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(message.url, { method: "POST", headers: { ...message.headers, "content-length": message.body.length }, ...material }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.write(message.body.subarray(0, 100));
    req.once("socket", (socket) =>
      socket.once("secureConnect", () =>
        setTimeout(() => {
          server.kill("SIGTERM"); // the body is half sent
          setTimeout(() => req.end(message.body.subarray(100)), 300);
        }, 200),
      ),
    );
  });
  const result = await answer;
  t.equal(result.status, 202, `the request in flight was answered: ${result.body}`);
  const exit = await done;
  t.equal(exit.code, 0, "then the process exits 0");
  t.match(await readFile(join(dir, "data", "messages.jsonl"), "utf8"), JSON.parse(result.body).id, "and its message is stored");
});
