import type { Socket } from "node:net";
import { parseProxyHeader } from "./proxy-protocol.js";

/**
 * Reads a PROXY protocol header off a fresh connection, then puts back whatever followed it
 * (the start of the TLS handshake), so the TLS layer reads the stream as if the header had
 * never been there. Resolves with the client's address, or undefined for LOCAL/UNKNOWN.
 * @throws Error when the header is missing, malformed, or not complete within `timeoutMs`.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    let received: Buffer = Buffer.alloc(0);
    const finish = (error: Error | undefined, address?: string) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      if (error) reject(error);
      else resolve(address);
    };
    const onData = (chunk: Buffer) => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const header = parseProxyHeader(received);
      if (header.status === "incomplete") return;
      if (header.status === "invalid") return finish(new Error(header.reason));
      socket.pause();
      const rest = received.subarray(header.length);
      if (rest.length > 0) socket.unshift(rest);
      finish(undefined, header.source?.address);
    };
    const onClose = () => finish(new Error("closed before the PROXY header"));
    const timer = setTimeout(() => finish(new Error("no PROXY header in time")), timeoutMs);
    socket.on("data", onData);
    socket.once("close", onClose);
  });
}
