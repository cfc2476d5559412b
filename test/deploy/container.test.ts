import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import t from "tap";
import { PosternClient } from "../../src/client/index.js";
import { baseImage, buildStageImage, docker, dockerUnavailable, waitForHealth } from "../helpers/docker.js";
import { freePort } from "../helpers/net.js";
import { ROOT } from "../helpers/process.js";

// Building the image runs npm ci and tsc inside Docker: minutes on a loaded 2-core machine,
// and making the base image (debootstrap) a few more the first time.
t.setTimeout(20 * 60_000);

/** What the Dockerfile COPYs from the build context, and the context's ignore rules. */
const CONTEXT = ["Dockerfile", ".dockerignore", "package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json", "src", "config"];

/** Made or checked once per run: a failure to make it should cost minutes once, not per test. */
let baseOnce: ReturnType<typeof baseImage> | undefined;

/**
 * Why the container tests cannot run here (POSTERN_SKIP_CONTAINER=1, no engine, no base image),
 * or the base image to build from. A skip is said out loud: a comment and a skipped assertion.
 */
async function prepare(t: Pick<typeof import("tap").default, "comment" | "pass">): Promise<string | undefined> {
  const skip = (why: string) => {
    t.comment(`SKIPPED: ${why}: the container image was not built or run`);
    t.pass(`skipped: ${why}`, { skip: why });
    return undefined;
  };
  if (process.env.POSTERN_SKIP_CONTAINER === "1") return skip("POSTERN_SKIP_CONTAINER=1");
  const unavailable = await dockerUnavailable();
  if (unavailable) return skip(`no Docker engine: ${unavailable} (apt-get install docker.io, then start dockerd; .ci/run does both)`);
  baseOnce ??= baseImage();
  const base = await baseOnce;
  if ("skip" in base) return skip(base.skip);
  t.comment(`base image: ${base.image}${base.seconds > 0 ? ` (deploy/base-image.sh: ${base.seconds.toFixed(1)} s)` : ""}`);
  return base.image;
}

/** The CA bundle npm on this machine trusts (a TLS-intercepting proxy's CA goes there), if any. */
async function npmCaFile(): Promise<string | undefined> {
  const { stdout } = await promisify(execFile)("npm", ["config", "get", "cafile"]).catch(() => ({ stdout: "" }));
  const file = stdout.trim();
  if (file === "" || file === "null" || file === "undefined") return undefined;
  return (await stat(file).catch(() => undefined))?.isFile() ? file : undefined;
}

t.test("the Dockerfile needs neither BuildKit nor a frontend image", async (t) => {
  const dockerfile = await readFile(join(ROOT, "Dockerfile"), "utf8");
  t.notMatch(dockerfile, /^#\s*syntax\s*=/m, "no # syntax= line (it pulls a frontend image)");
  t.notMatch(dockerfile, /^\s*RUN\s+--mount/m, "no RUN --mount (BuildKit only)");
  t.match(dockerfile, /^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
  t.match(dockerfile, /^USER 10001:10001$/m);
  t.match(dockerfile, /^HEALTHCHECK [^\n]*\\\n\s*CMD [^\n]*\/healthz/m);
});

t.test("the build context leaves out keys, local state and build output", async (t) => {
  const base = await prepare(t);
  if (!base) return;
  const ctx = await mkdtemp(join(tmpdir(), "postern-context-"));
  t.teardown(() => rm(ctx, { recursive: true, force: true }));
  await cp(join(ROOT, ".dockerignore"), join(ctx, ".dockerignore"));
  const wanted = ["package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json", "src/main.ts", "config/postern.yaml", "build-ca.pem"];
  const unwanted = [
    "certs/issuing-ca.key", "certs/ca-passphrase", "certs/issuing-ca.crt", "data/messages.jsonl", "data/audit.jsonl", "client.key", "src/key.pem", "config/tls/server.key", "src/ca-passphrase",
    "bundle.p12", "node_modules/yaml/package.json", "dist/main.js", ".git/HEAD", ".tap/report.json", "test/x.test.ts", ".env",
  ];
  for (const file of [...wanted, ...unwanted]) {
    await mkdir(dirname(join(ctx, file)), { recursive: true });
    await writeFile(join(ctx, file), "x");
  }
  const tag = `postern-context-test:${randomBytes(4).toString("hex")}`;
  const built = await docker(["build", "--no-cache", "-t", tag, "-f", "-", ctx], {
    input: `FROM ${base}\nCOPY . /ctx\nRUN cd /ctx && find . -type f | sort | sed 's/^/CONTEXT /'\n`,
    timeoutMs: 5 * 60_000,
  });
  t.teardown(async () => void (await docker(["rmi", "-f", tag])));
  t.equal(built.code, 0, built.code === 0 ? "the probe image builds" : built.stderr);
  const seen = [...built.stdout.matchAll(/^CONTEXT \.\/(.+)$/gm)].map((m) => m[1]!);
  t.same(wanted.filter((f) => !seen.includes(f)), [], "what the Dockerfile copies (and the optional proxy CA) reaches the build");
  t.same(seen.filter((f) => !wanted.includes(f)), [], "keys, PKI and message files, node_modules, dist, .git, tests stay out");
});

t.test("the image builds, runs read-only as uid 10001, turns healthy, takes a signed message and stops with 0", async (t) => {
  const base = await prepare(t);
  if (!base) return;
  const id = randomBytes(4).toString("hex");
  const tag = `postern-test:${id}`;
  const name = `postern-test-${id}`;
  const ctx = await mkdtemp(join(tmpdir(), "postern-image-"));
  const out = await mkdtemp(join(tmpdir(), "postern-image-certs-"));
  let buildStage: string | undefined;
  t.teardown(async () => {
    await docker(["rm", "-f", "-v", name]);
    await docker(["volume", "rm", `${name}-certs`, `${name}-data`]);
    await docker(["rmi", "-f", tag]);
    if (buildStage) await docker(["rmi", buildStage]);
    await rm(ctx, { recursive: true, force: true });
    await rm(out, { recursive: true, force: true });
  });

  // A copy of what the build needs, so the proxy's CA bundle goes into the context without
  // touching the working tree.
  for (const entry of CONTEXT) await cp(join(ROOT, entry), join(ctx, entry), { recursive: true });
  const ca = await npmCaFile();
  if (ca) await cp(ca, join(ctx, "build-ca.pem"));
  const buildStarted = performance.now();
  const build = await docker(["build", "--build-arg", `NODE_IMAGE=${base}`, "-t", tag, ctx], { timeoutMs: 15 * 60_000 });
  const buildSeconds = (performance.now() - buildStarted) / 1000;
  buildStage = buildStageImage(build.stdout);
  t.equal(build.code, 0, `docker build: ${build.stdout.slice(-3000)}${build.stderr}`);
  if (build.code !== 0) return;
  t.comment(`build: ${buildSeconds.toFixed(1)} s from ${base}${ca ? ` with npm's CA bundle ${ca} as build-ca.pem` : ""}`);

  const [dataPort, publicPort] = [await freePort(), await freePort()];
  const run = await docker([
    "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp",
    "-v", `${name}-certs:/app/certs`, "-v", `${name}-data:/app/data`,
    "-p", `127.0.0.1:${dataPort}:8443`, "-p", `127.0.0.1:${publicPort}:9464`, tag,
  ]);
  t.equal(run.code, 0, run.stderr);
  const runStarted = performance.now();
  const health = await waitForHealth(name, 120_000);
  const healthSeconds = (performance.now() - runStarted) / 1000;
  const logs = async () => {
    const l = await docker(["logs", name]);
    return l.stdout + l.stderr;
  };
  t.equal(health, "healthy", `Docker's HEALTHCHECK after ${healthSeconds.toFixed(1)} s; logs:\n${health === "healthy" ? "" : await logs()}`);
  if (health !== "healthy") return;
  t.comment(`health: ${health} ${healthSeconds.toFixed(1)} s after docker run`);

  const uid = (await docker(["exec", name, "id", "-u"])).stdout.trim();
  const pid1 = /^Uid:\s+(\d+)\s+(\d+)/m.exec((await docker(["exec", name, "cat", "/proc/1/status"])).stdout);
  t.equal(uid, "10001", "the image's user");
  t.same(pid1?.slice(1, 3), ["10001", "10001"], "node (PID 1) runs as 10001, real and effective");
  // As root too: the file system refuses the write, not just the permissions.
  const write = await docker(["exec", "--user", "0", name, "sh", "-c", "echo x > /app/probe"]);
  t.not(write.code, 0, "a write to /app fails");
  t.match(write.stderr, /Read-only file system/);
  t.comment(`uid: ${uid} (PID 1: ${pid1?.[1]}); read-only: a root write to /app failed with "${write.stderr.trim()}"`);

  for (const file of ["demo-client.crt", "demo-client.key", "ca-bundle.pem"]) {
    const copied = await docker(["cp", `${name}:/app/certs/${file}`, join(out, file)]);
    t.equal(copied.code, 0, copied.stderr);
  }
  const client = new PosternClient({
    url: `https://localhost:${dataPort}`,
    cert: await readFile(join(out, "demo-client.crt")),
    key: await readFile(join(out, "demo-client.key")),
    ca: await readFile(join(out, "ca-bundle.pem")),
    attempts: 1,
  });
  const sent = await client.send("/v1/messages/container", JSON.stringify({ from: "host" })).finally(() => client.close());
  t.equal(sent.status, 202);
  t.match(sent.id, /^[0-9a-f-]{36}$/);
  t.comment(`message: 202 ${sent.id}`);
  const stored = await docker(["exec", name, "cat", "/app/data/messages.jsonl"]);
  t.match(stored.stdout, sent.id, "stored in the data volume");
  const metrics = await (await fetch(`http://127.0.0.1:${publicPort}/metrics`)).text();
  t.match(metrics, 'postern_requests_total{route="messages",outcome="accepted",status="202"} 1', "/metrics through the published port");

  const stopStarted = performance.now();
  const stop = await docker(["stop", "-t", "30", name], { timeoutMs: 60_000 });
  t.equal(stop.code, 0, stop.stderr);
  const exit = (await docker(["inspect", "--format", "{{.State.ExitCode}}", name])).stdout.trim();
  t.equal(exit, "0", "SIGTERM: drained and exited 0");
  t.match(await logs(), /"msg":"stopped"/);
  t.comment(`stop: exit ${exit} ${((performance.now() - stopStarted) / 1000).toFixed(1)} s after docker stop`);
});
