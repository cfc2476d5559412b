/**
 * CSRF protection for the console. A browser holding the admin certificate presents it to any
 * page that makes it call the admin listener, so a request the browser sends on its own must
 * prove it came from the console: a mutating call that looks like a browser's (it carries
 * `Origin` or `Sec-Fetch-Site`, which browsers always send on a cross-origin POST and a page
 * cannot remove) must come from the admin listener's own origin and carry the token the
 * console read from `GET /v1/console/session` (a cross-origin page cannot read it: no CORS).
 * The token is an HMAC of the admin certificate's fingerprint, so it is bound to that
 * certificate and needs no server state. Clients without those headers (the CLI, the SDK,
 * curl) are not browsers and are not asked for it.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { PosternError } from "../errors.js";
import type { AnyRequest, Peer } from "../http/index.js";

export const CSRF_HEADER = "postern-csrf";

/** The console's CSRF token for this certificate (base64url HMAC-SHA256 of its fingerprint). */
export function csrfToken(key: Uint8Array, peer: Peer): string {
  return createHmac("sha256", key).update(`postern-console-csrf:${peer.identity.fingerprint}`).digest("base64url");
}

/** Throws `csrf` for a browser's mutating call from another origin or without the token. */
export function checkBrowserRequest(req: AnyRequest, peer: Peer, key: Uint8Array | undefined): void {
  const origin = header(req, "origin");
  const site = header(req, "sec-fetch-site");
  if (origin === undefined && site === undefined) return;
  if (site !== undefined && site !== "same-origin") throw new PosternError("csrf", "a mutating call from another site");
  const host = header(req, "host") ?? header(req, ":authority");
  if (origin !== undefined && (host === undefined || origin !== `https://${host}`)) throw new PosternError("csrf", "a mutating call from another origin");
  const given = header(req, CSRF_HEADER);
  if (key === undefined || given === undefined) throw new PosternError("csrf", `send the console's token in ${CSRF_HEADER}`);
  const expected = Buffer.from(csrfToken(key, peer));
  const actual = Buffer.from(given);
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) throw new PosternError("csrf", "the CSRF token does not belong to this certificate");
}

function header(req: AnyRequest, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === "string" && value !== "" ? value : undefined;
}
