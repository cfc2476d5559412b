import { PosternError } from "../errors.js";
import type { AnyRequest } from "./types.js";

/**
 * Header rules no handler can enforce after Node has merged the lines: no more lines than the
 * limit, and one authority: exactly one Host over HTTP/1.1 (RFC 9112 §3.2); over HTTP/2,
 * `:authority` or one Host, and the same one when both are sent (RFC 9113 §8.3.1).
 */
export function headerSectionRefusal(req: AnyRequest, maxHeaderCount: number): PosternError | undefined {
  const raw = req.rawHeaders;
  let lines = 0;
  const hosts: string[] = [];
  let authority: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.startsWith(":")) {
      if (name === ":authority") authority = raw[i + 1];
      continue;
    }
    lines += 1;
    if (name.length === 4 && name.toLowerCase() === "host") hosts.push(raw[i + 1]!);
  }
  if (lines > maxHeaderCount) return new PosternError("headers-too-large", `at most ${maxHeaderCount} header lines`);
  if (hosts.length > 1) return new PosternError("bad-request", "more than one Host header");
  if (req.httpVersionMajor === 1 && hosts.length === 0) return new PosternError("bad-request", "the Host header is required");
  if (authority !== undefined && hosts.length === 1 && hosts[0]!.toLowerCase() !== authority.toLowerCase()) {
    return new PosternError("bad-request", ":authority and Host differ");
  }
  if (authority === undefined && hosts.length === 0) return new PosternError("bad-request", "the request names no authority");
  return undefined;
}

/** The request's authority: HTTP/2's `:authority`, else Host; lowercase. Call after `headerSectionRefusal` passed. */
export function requestAuthority(req: AnyRequest): string {
  const authority = req.headers[":authority"] ?? req.headers.host;
  return String(authority ?? "").toLowerCase();
}
