import type { IncomingMessage } from "node:http";
import { PosternError } from "../errors.js";

/**
 * Reads a request body up to `maxBodyBytes`. A declared Content-Length over the limit is
 * refused before a byte is read; a body that grows past it is refused as soon as it does.
 */
export async function readBody(req: IncomingMessage, maxBodyBytes: number): Promise<Buffer> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > maxBodyBytes) {
    throw new PosternError("body-too-large", `the limit is ${maxBodyBytes} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBodyBytes) throw new PosternError("body-too-large", `the limit is ${maxBodyBytes} bytes`);
    chunks.push(chunk);
  }
  if (!req.complete) throw new PosternError("bad-request", "the body was cut short");
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}
