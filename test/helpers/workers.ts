import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { connect, type TLSSocket } from "node:tls";
import { AdminClient, PosternClient } from "../../src/client/index.js";
import { createCsr, generateKeyPair, plainPrivateKeyPem } from "../../src/pki/index.js";
import { startGatewayProcess, type GatewayProcess } from "./gateway-process.js";

/** `postern start` with cluster workers (the access log names each worker's pid). */
export interface ClusterGateway extends GatewayProcess {
  /** The workers' pids as the banner lists them. */
  workerPids: number[];
}

export async function startClusterGateway(
  t: { teardown(fn: () => Promise<void>): void },
  options: { workers: number; configYaml?: string; env?: Record<string, string> },
): Promise<ClusterGateway> {
  const gw = await startGatewayProcess(t, {
    ...(options.configYaml !== undefined ? { configYaml: options.configYaml } : {}),
    env: { POSTERN_WORKERS: String(options.workers), ...options.env },
    startTimeoutMs: 120_000,
  });
  return { ...gw, workerPids: (/workers\s+\d+ \(pids ([\d, ]+)\)/.exec(gw.banner)?.[1] ?? "").split(", ").filter(Boolean).map(Number) };
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
