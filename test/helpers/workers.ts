import type { ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type TLSSocket } from "node:tls";
import { AdminClient, PosternClient } from "../../src/client/index.js";
import { createCsr, generateKeyPair, plainPrivateKeyPem } from "../../src/pki/index.js";
import { bannerPorts, finished, spawnTs, waitForOutput } from "./process.js";

/** `postern start` with cluster workers, its stderr followed live (the access log names each worker's pid). */
export interface ClusterGateway {
  child: ChildProcess;
  done: ReturnType<typeof finished>;
  dir: string;
  certs: string;
  dataPort: number;
  adminPort: number;
  publicPort: number;
  /** The workers' pids as the banner lists them. */
  workerPids: number[];
  /** stderr so far. */
  stderr(): string;
  /** The JSON log lines so far (a line torn by interleaved writes is skipped). */
  lines(): Array<Record<string, unknown>>;
}

export async function startClusterGateway(
  t: { teardown(fn: () => Promise<void>): void },
  options: { workers: number; configYaml?: string; env?: Record<string, string> },
): Promise<ClusterGateway> {
  const dir = await mkdtemp(join(tmpdir(), "postern-workers-"));
  const env: Record<string, string> = {
    POSTERN_DATA_PORT: "0",
    POSTERN_ADMIN_PORT: "0",
    POSTERN_PUBLIC_PORT: "0",
    POSTERN_HANDSHAKES_PER_SECOND_PER_ADDRESS: "0",
    POSTERN_WORKERS: String(options.workers),
    ...options.env,
  };
  if (options.configYaml !== undefined) {
    await writeFile(join(dir, "postern.yaml"), options.configYaml);
    env.POSTERN_CONFIG = join(dir, "postern.yaml");
  }
  const child = spawnTs("src/main.ts", [], { cwd: dir, env });
  let stderr = "";
  child.stderr?.on("data", (d) => (stderr += d));
  const done = finished(child);
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await done;
    await rm(dir, { recursive: true, force: true });
  });
  const banner = await waitForOutput(child, /npx postern send .*\n/, 120_000);
  return {
    child,
    done,
    dir,
    certs: join(dir, "certs"),
    ...bannerPorts(banner),
    workerPids: (/workers\s+\d+ \(pids ([\d, ]+)\)/.exec(banner)?.[1] ?? "").split(", ").filter(Boolean).map(Number),
    stderr: () => stderr,
    lines: () =>
      stderr.split("\n").flatMap((line) => {
        try {
          return [JSON.parse(line) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
  };
}

/** Polls `check` until it returns a value other than undefined (the log is buffered up to 200 ms). */
export async function eventually<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The pid of the process whose access log line carries `requestId`. */
export function pidOfRequest(gw: ClusterGateway, requestId: string): Promise<number> {
  return eventually(() => {
    const line = gw.lines().find((l) => l.msg === "request" && l.requestId === requestId);
    return typeof line?.pid === "number" ? line.pid : undefined;
  });
}

/** A client with the demo certificate that keeps exactly one connection (so one worker). */
export async function demoClient(gw: ClusterGateway, connections = 1): Promise<PosternClient> {
  return new PosternClient({
    url: `https://localhost:${gw.dataPort}`,
    cert: await readFile(join(gw.certs, "demo-client.crt")),
    key: await readFile(join(gw.certs, "demo-client.key")),
    ca: await readFile(join(gw.certs, "ca-bundle.pem")),
    attempts: 1,
    connections,
  });
}

/** The admin client of a gateway, with its bootstrapped admin certificate. */
export async function adminClient(gw: ClusterGateway): Promise<AdminClient> {
  return new AdminClient({
    url: `https://localhost:${gw.adminPort}`,
    cert: await readFile(join(gw.certs, "admin.crt")),
    key: await readFile(join(gw.certs, "admin.key")),
    ca: await readFile(join(gw.certs, "ca-bundle.pem")),
  });
}

/** A fresh client certificate issued by the admin API. */
export async function issueClient(admin: AdminClient, name: string): Promise<{ serial: string; cert: string; key: string }> {
  const { privateKey } = await generateKeyPair("P-256");
  const issued = await admin.issue({ csr: createCsr({ privateKey, identity: `spiffe://postern.local/client/${name}` }), roles: ["client"] });
  return { serial: issued.serial, cert: issued.certificate, key: plainPrivateKeyPem(privateKey) };
}

/** One keep-alive TLS connection to the data listener. */
export function openTls(gw: ClusterGateway, cert: string, key: string, ca: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port: gw.dataPort, servername: "localhost", cert, key, ca }, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Writes one keep-alive request (a path with no route: 404) and resolves with its X-Request-Id, or "closed". */
export function exchange(socket: TLSSocket): Promise<string> {
  if (socket.destroyed) return Promise.resolve("closed");
  return new Promise((resolve) => {
    let received = "";
    const onData = (d: Buffer) => {
      received += d.toString();
      if (!received.includes("\r\n\r\n")) return;
      const length = Number(/content-length: (\d+)/i.exec(received)?.[1] ?? 0);
      if (received.length < received.indexOf("\r\n\r\n") + 4 + length) return;
      finish(/x-request-id: ([^\r\n]+)/i.exec(received)?.[1] ?? "no-id");
    };
    const finish = (answer: string) => {
      socket.off("data", onData);
      socket.off("close", onClose);
      resolve(answer);
    };
    const onClose = () => finish("closed");
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.on("error", () => undefined);
    socket.write("GET /no-such-route HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n");
  });
}
