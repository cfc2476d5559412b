/**
 * Serves the web console's static files (`console/` at the package root, shipped with it):
 * read once at start, served only to admins (the router checks the certificate first), never
 * from a CDN. Every answer carries a strict Content-Security-Policy: scripts and styles only
 * from these files (no inline script, no eval), requests only to this origin, no framing.
 */
import { readdir, readFile } from "node:fs/promises";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PosternError } from "../errors.js";
import { type AnyRequest, type AnyResponse, sendBytes } from "../http/index.js";

/** Where the console's files are, from this module (src/admin/ or dist/admin/). */
export const CONSOLE_DIR = fileURLToPath(new URL("../../console/", import.meta.url));

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

const HEADERS = {
  "content-security-policy": CONSOLE_CSP,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "cache-control": "no-store",
};

/** Loads the console's files (flat: one directory, known extensions) and returns their server. */
export async function consoleFiles(dir = CONSOLE_DIR): Promise<(req: AnyRequest, res: AnyResponse, pathname: string) => Promise<void>> {
  const files = new Map<string, { type: string; body: Buffer }>();
  // A package without its console/ serves 404s, not errors.
  const names = await readdir(dir).catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? [] : Promise.reject(e)));
  for (const name of names) {
    const type = TYPES[extname(name)];
    if (type) files.set(name, { type, body: await readFile(join(dir, name)) });
  }
  return async (req, res, pathname) => {
    if (req.method !== "GET" && req.method !== "HEAD") throw new PosternError("method-not-allowed", "the console's files are read with GET");
    if (pathname === "/console") {
      res.writeHead(308, { location: "/console/", ...HEADERS });
      return void res.end();
    }
    const name = pathname === "/console/" ? "index.html" : pathname.slice("/console/".length);
    const file = files.get(name);
    if (!file) throw new PosternError("not-found", "no such console file");
    sendBytes(req, res, 200, file.type, file.body, HEADERS);
  };
}
