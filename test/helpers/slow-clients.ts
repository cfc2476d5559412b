/**
 * A load generator run as its own process by tests: holds many connections open the way an
 * attacker would and reports when the server cuts each one.
 *   idle:      TCP connections that never start a TLS handshake;
 *   slowloris: mTLS connections that send a request line, then one header byte a second;
 *   slowbody:  mTLS connections that send whole headers, then one body byte a second.
 * Usage: slow-clients.ts <port> <certs dir> <idle> <slowloris> <slowbody>
 * Prints one JSON line {"event":"held",...} once all are open, then
 * {"event":"done","closes":{kind:[ms after open, ...]}} once all are closed (or after 120 s).
 */
import { readFileSync } from "node:fs";
import { connect as connectTcp, type Socket } from "node:net";
import { join } from "node:path";
import { connect as connectTls } from "node:tls";

const [portText, certs, idleText, slowText, bodyText] = process.argv.slice(2);
const port = Number(portText);
const material = {
  cert: readFileSync(join(certs!, "demo-client.crt")),
  key: readFileSync(join(certs!, "demo-client.key")),
  ca: readFileSync(join(certs!, "ca-bundle.pem")),
};
type Kind = "idle" | "slowloris" | "slowbody";
const closes: Record<Kind, number[]> = { idle: [], slowloris: [], slowbody: [] };
let open = 0;
let failed = 0;
const drips = new Set<NodeJS.Timeout>();

function track(kind: Kind, socket: Socket, openedAt: number, drip?: () => void): void {
  open += 1;
  let timer: NodeJS.Timeout | undefined;
  if (drip) {
    timer = setInterval(drip, 1000);
    drips.add(timer);
  }
  socket.on("data", () => undefined);
  socket.on("error", () => undefined);
  socket.once("close", () => {
    open -= 1;
    if (timer) {
      clearInterval(timer);
      drips.delete(timer);
    }
    closes[kind].push(Date.now() - openedAt);
  });
}

function openTls(kind: Kind, first: string, dripByte: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = connectTls({ host: "127.0.0.1", port, servername: "localhost", ...material }, () => {
      const openedAt = Date.now();
      socket.write(first);
      track(kind, socket, openedAt, () => socket.writable && socket.write(dripByte));
      resolve();
    });
    socket.once("error", () => {
      failed += 1;
      resolve();
    });
  });
}

function openIdle(): Promise<void> {
  return new Promise((resolve) => {
    const socket = connectTcp({ host: "127.0.0.1", port }, () => {
      track("idle", socket, Date.now());
      resolve();
    });
    socket.once("error", () => {
      failed += 1;
      resolve();
    });
  });
}

async function inBatches(count: number, make: () => Promise<void>): Promise<void> {
  for (let i = 0; i < count; i += 50) await Promise.all(Array.from({ length: Math.min(50, count - i) }, make));
}

await inBatches(Number(slowText), () => openTls("slowloris", "POST /v1/messages/slow HTTP/1.1\r\nhost: localhost\r\nx-slow: ", "a"));
await inBatches(Number(bodyText), () =>
  openTls("slowbody", "POST /v1/messages/slow HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n", " "),
);
await inBatches(Number(idleText), openIdle);
process.stdout.write(JSON.stringify({ event: "held", open, failed }) + "\n");
const deadline = Date.now() + 120_000;
while (open > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
process.stdout.write(JSON.stringify({ event: "done", open, closes }) + "\n");
for (const timer of drips) clearInterval(timer);
process.exit(0);
