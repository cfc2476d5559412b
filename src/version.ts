import { readFileSync } from "node:fs";

/**
 * Postern's version, from the package.json one directory above this file: the repository root
 * both for src/ (run through tsx) and for dist/ (the build, and the image, which keeps
 * package.json beside dist/). Read once, at import: a missing or broken package.json stops the
 * process at start rather than at a scrape.
 */
export const POSTERN_VERSION: string = readVersion(new URL("../package.json", import.meta.url));

function readVersion(file: URL): string {
  const { version } = JSON.parse(readFileSync(file, "utf8")) as { version?: unknown };
  if (typeof version !== "string" || version === "") throw new Error(`${file.pathname}: no "version"`);
  return version;
}
