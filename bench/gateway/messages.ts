/**
 * The bench's messages: JSON bodies of an exact size, each signed with a fresh nonce by the SDK
 * (`PosternClient.prepare`), so replay protection never refuses one; and the raw HTTP/1.1 form
 * of a signed message for connections the bench drives by hand.
 */
import type { PosternClient, PreparedMessage } from "../../src/client/index.js";

/** A JSON body of exactly `bodyBytes` bytes (or its skeleton, if that is longer), unique per `run` and `seq`. */
export function messageBody(run: string, seq: number, bodyBytes: number): string {
  const skeleton = `{"run":"${run}","seq":${seq},"pad":""}`;
  return `{"run":"${run}","seq":${seq},"pad":"${"x".repeat(Math.max(0, bodyBytes - skeleton.length))}"}`;
}

/** `count` distinct signed messages for `path` (signing happens here, before any timed part). */
export function prepareMessages(client: PosternClient, path: string, run: string, count: number, bodyBytes: number): PreparedMessage[] {
  return Array.from({ length: count }, (_, seq) => client.prepare(path, messageBody(run, seq, bodyBytes)));
}

/** A signed message as HTTP/1.1 bytes, keep-alive, Host = the authority it was signed for. */
export function rawHttpRequest(message: PreparedMessage): Buffer {
  const url = new URL(message.url);
  const lines = [`${message.method} ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`];
  for (const [name, value] of Object.entries(message.headers)) lines.push(`${name}: ${value}`);
  lines.push(`content-length: ${message.body.length}`, "", "");
  return Buffer.concat([Buffer.from(lines.join("\r\n")), message.body]);
}

/**
 * Reads one HTTP/1.1 response with a Content-Length from the bytes seen so far: its status once
 * complete, else undefined. (Enough for the 202s and problem answers of the servers under test.)
 */
export function completeResponseStatus(bytes: Buffer): number | undefined {
  const end = bytes.indexOf("\r\n\r\n");
  if (end === -1) return undefined;
  const head = bytes.subarray(0, end).toString("latin1");
  const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
  if (bytes.length < end + 4 + length) return undefined;
  return Number(head.slice(9, 12));
}
