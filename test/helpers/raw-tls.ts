import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { connect, type ConnectionOptions, type TLSSocket } from "node:tls";

/** Client certificate material from a bootstrapped PKI directory ("demo-client" or "admin"). */
export async function tlsMaterial(certsDir: string, name = "demo-client"): Promise<{ cert: Buffer; key: Buffer; ca: Buffer }> {
  return {
    cert: await readFile(join(certsDir, `${name}.crt`)),
    key: await readFile(join(certsDir, `${name}.key`)),
    ca: await readFile(join(certsDir, "ca-bundle.pem")),
  };
}

/** Opens a TLS connection and resolves once the handshake completed. */
export function openTls(port: number, options: ConnectionOptions & { localAddress?: string } = {}): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, servername: "localhost", ...options }, () => resolve(socket));
    socket.once("error", reject);
  });
}

export interface RawAnswer {
  /** 0 when the server closed without answering. */
  status: number;
  headers: Record<string, string>;
  body: string;
  raw: string;
}

/**
 * Writes `request` bytes as they are (no client-side HTTP library normalises them) and reads
 * until the server closes or `timeoutMs` passes; parses the first response.
 */
export async function rawExchange(port: number, request: string | Buffer, options: ConnectionOptions = {}, timeoutMs = 10_000): Promise<RawAnswer> {
  const socket = await openTls(port, options);
  return readAnswer(socket, request, timeoutMs);
}

/** Writes `request` on an open socket and reads one response: until its Content-Length is in, the server closes, or `timeoutMs`. */
export function readAnswer(socket: TLSSocket, request: string | Buffer | undefined, timeoutMs = 10_000): Promise<RawAnswer> {
  return new Promise((resolve) => {
    let raw = "";
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(parseAnswer(raw));
    };
    const timer = setTimeout(done, timeoutMs);
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      raw += d;
      if (isComplete(raw)) done();
    });
    socket.on("error", () => undefined);
    socket.on("close", done);
    if (request !== undefined) socket.write(request);
  });
}

function isComplete(raw: string): boolean {
  const end = raw.indexOf("\r\n\r\n");
  if (end < 0) return false;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(raw.slice(0, end));
  return length !== null && raw.length - end - 4 >= Number(length[1]);
}

function parseAnswer(raw: string): RawAnswer {
  const match = /^HTTP\/1\.1 (\d{3})[^\r\n]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(raw);
  if (!match) return { status: 0, headers: {}, body: "", raw };
  const headers: Record<string, string> = {};
  for (const line of match[2]!.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(match[1]), headers, body: match[3]!, raw };
}

/** Writes one request on an open connection and resolves with the status, leaving the connection open. */
export function answerOn(socket: TLSSocket, request: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let raw = "";
    const onData = (chunk: Buffer) => {
      raw += chunk.toString("latin1");
      const end = raw.indexOf("\r\n\r\n");
      const length = end < 0 ? null : /\r\ncontent-length:\s*(\d+)/i.exec(raw.slice(0, end));
      if (end < 0 || !length || raw.length - end - 4 < Number(length[1])) return;
      cleanup();
      resolve(Number(raw.slice(9, 12)));
    };
    const onClose = () => {
      cleanup();
      reject(new Error(`the connection closed; read: ${raw}`));
    };
    const cleanup = () => {
      socket.off("data", onData);
      socket.off("close", onClose);
    };
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.write(request);
  });
}
