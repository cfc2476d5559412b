import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { PosternClient } from "../../src/client/index.js";
import { finished, spawnTs, waitForOutput } from "../helpers/process.js";

const routeYaml = (path: string) =>
  ["routes:", "  - name: messages", `    path: ${path}`, "    backend: messages", "    allow: { roles: [client] }", ""].join("\n");

t.test("SIGHUP applies new routes without a restart; a broken config keeps the old one and says why", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "postern-reload-"));
  const configPath = join(dir, "postern.yaml");
  await writeFile(configPath, routeYaml("/v1/first/:topic"));
  const server = spawnTs("src/main.ts", [], {
    cwd: dir,
    env: { POSTERN_CONFIG: configPath, POSTERN_DATA_PORT: "0", POSTERN_ADMIN_PORT: "0", POSTERN_PUBLIC_PORT: "0" },
  });
  const done = finished(server);
  let stderr = "";
  server.stderr?.on("data", (d) => (stderr += d));
  t.teardown(async () => {
    server.kill("SIGTERM");
    await done;
    await rm(dir, { recursive: true, force: true });
  });
  const banner = await waitForOutput(server, /npx postern send .*\n/);
  const port = Number(/data plane \(mTLS\)\s+https:\/\/[^:]+:(\d+)/.exec(banner)![1]);
  const certs = join(dir, "certs");
  const client = new PosternClient({
    url: `https://localhost:${port}`,
    cert: await readFile(join(certs, "demo-client.crt")),
    key: await readFile(join(certs, "demo-client.key")),
    ca: await readFile(join(certs, "ca-bundle.pem")),
    attempts: 1,
  });
  t.teardown(() => client.close());
  const status = async (path: string) => (await client.dispatch(client.prepare(path, "{}"))).status;
  const waitFor = async (pattern: RegExp) => {
    for (const deadline = Date.now() + 30_000; !pattern.test(stderr) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
    return pattern.test(stderr);
  };

  t.equal(await status("/v1/first/x"), 202);
  t.equal(await status("/v1/second/x"), 404);

  await writeFile(configPath, routeYaml("/v1/second/:topic"));
  server.kill("SIGHUP");
  t.ok(await waitFor(/configuration reloaded/), "the reload is logged");
  t.equal(await status("/v1/second/x"), 202, "the new route serves");
  t.equal(await status("/v1/first/x"), 404, "the old route is gone");

  await writeFile(configPath, "routes:\n  - name: broken\n    path: no-slash\n    backend: nowhere\n");
  server.kill("SIGHUP");
  t.ok(await waitFor(/configuration reload failed/), "the failure is logged");
  t.match(stderr, /routes\.0\.path/, "naming the bad key");
  t.equal(await status("/v1/second/x"), 202, "the running configuration stays");
});
