import type { AnyRequest } from "./types.js";
import { PosternError } from "../errors.js";

/**
 * Reads a request body up to `maxBodyBytes`. A declared Content-Length over the limit is
 * refused before a byte is read; a body that grows past it is refused as soon as it does.
 * @throws PosternError body-too-large, or client-closed when the connection ends mid-body.
 */
export async function readBody(req: AnyRequest, maxBodyBytes: number): Promise<Buffer> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > maxBodyBytes) {
    throw new PosternError("body-too-large", `the limit is ${maxBodyBytes} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBodyBytes) throw new PosternError("body-too-large", `the limit is ${maxBodyBytes} bytes`);
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof PosternError) throw error;
    // The stream fails only when the connection went away mid-body ("aborted", ECONNRESET).
    throw new PosternError("client-closed", "the connection closed before the body was complete", { cause: error });
  }
  if (!req.complete) throw new PosternError("client-closed", "the connection closed before the body was complete");
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}
