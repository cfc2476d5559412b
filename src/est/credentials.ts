/**
 * Who an EST request says it is, from its Authorization field (RFC 7030 §3.2.3): an enrollment
 * token as the password of HTTP Basic (any user name; RFC 7617) or as a Bearer token (RFC 6750).
 * A pure function of the header; the PKI decides whether the token is any good.
 */
import { PosternError } from "../errors.js";

/** The challenge every EST 401 carries (RFC 9110 §11.6.1), so clients that wait for one send the token. */
export const EST_CHALLENGE = 'Basic realm="postern-est", Bearer realm="postern-est"';

export type EstCredential = { kind: "token"; token: string } | { kind: "none" };

/**
 * The token in `Authorization`, or `none` when the field is absent. A field that is present
 * but unreadable, or of another scheme, is `token-invalid` (never silently ignored).
 */
export function credentialOf(authorization: string | undefined): EstCredential {
  if (authorization === undefined || authorization.trim() === "") return { kind: "none" };
  const m = /^\s*([A-Za-z]+)\s+(\S+)\s*$/.exec(authorization);
  const scheme = m?.[1]?.toLowerCase();
  const value = m?.[2] ?? "";
  if (scheme === "bearer") return { kind: "token", token: value };
  if (scheme === "basic") {
    const decoded = Buffer.from(value, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon >= 0 && decoded.slice(colon + 1) !== "") return { kind: "token", token: decoded.slice(colon + 1) };
  }
  throw new PosternError("token-invalid", "send the enrollment token as the HTTP Basic password or as a Bearer token");
}
