import type { AnyRequest } from "./types.js";
import { PosternError } from "../errors.js";

/**
 * Reads a request body up to `maxBodyBytes`. A declared Content-Length over the limit is
 * refused before a byte is read; a body that grows past it is refused as soon as it does (the
 * request is destroyed: the rest is never read). Plain stream events, not an async iterator:
 * this runs once per message, and the iterator's promise per chunk is most of its cost.
 * @throws PosternError body-too-large, or client-closed when the connection ends mid-body.
 */
export function readBody(req: AnyRequest, maxBodyBytes: number): Promise<Buffer> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > maxBodyBytes) {
    return Promise.reject(new PosternError("body-too-large", `the limit is ${maxBodyBytes} bytes`));
  }
  // Closed while the request waited (say, for a rate limit in Redis): no event would come any more.
  if (req.destroyed) return Promise.reject(closedEarly());
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (): void => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("close", onClosed);
      // An error after the body was read (a reset connection) must not go unheard: it would end the process.
      req.off("error", onClosed);
      req.on("error", ignore);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= maxBodyBytes) return void chunks.push(chunk);
      stop();
      req.destroy();
      reject(new PosternError("body-too-large", `the limit is ${maxBodyBytes} bytes`));
    };
    const onEnd = (): void => {
      stop();
      if (!req.complete) reject(closedEarly());
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    // The stream fails or closes before its end only when the connection went away mid-body ("aborted", ECONNRESET).
    const onClosed = (error?: unknown): void => {
      stop();
      reject(closedEarly(error));
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("close", onClosed);
    req.on("error", onClosed);
  });
}

function closedEarly(cause?: unknown): PosternError {
  return new PosternError("client-closed", "the connection closed before the body was complete", cause === undefined ? {} : { cause });
}

function ignore(): void {}
