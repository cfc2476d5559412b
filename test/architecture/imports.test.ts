import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import t from "tap";
import { ROOT } from "../helpers/process.js";

/** Every source file with the module specifiers it imports. */
function sources(dir = join(ROOT, "src")): Array<{ file: string; imports: string[] }> {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    if (!name.endsWith(".ts")) return [];
    const text = readFileSync(path, "utf8");
    const imports = [...text.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g), ...text.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]!);
    return [{ file: relative(join(ROOT, "src"), path), imports }];
  });
}

/** Each third-party library lives behind one folder or file (STYLE.md). */
const LIBRARY_HOMES: Record<string, RegExp> = {
  ioredis: /^(replay\/|consumer\/|pki\/redis-store\.ts|pki\/store-redis-scripts\.ts|app-pki\.ts)/,
  "prom-client": /^metrics\/prometheus\.ts$/,
  undici: /^(forward\/|client\/)/,
  "node-forge": /^pki\/pkcs12\.ts$/,
  "@peculiar/x509": /^pki\/x509\.ts$/,
  "structured-headers": /^signing\//,
  zod: /^config\//,
  yaml: /^config\//,
  pino: /^log\.ts$/,
};

/** Folders may not import from the layers above them: errors, config <- leaves <- tls <- gateway <- http, admin, cli <- app <- main. */
const FORBIDDEN: Array<[RegExp, RegExp]> = [
  [/^(signing|replay|metrics|ratelimit|pki|forward|storage|consumer|client|config)\//, /^\.\.\/(gateway|http|admin|cli)\/|^\.\.\/app/],
  // Storage is below the backends and the guards that write through it.
  [/^storage\//, /^\.\.\/(forward|replay|pki|tls)\//],
  [/^signing\//, /^\.\.\/(replay|metrics|ratelimit|pki|forward|tls|consumer|client)\//],
  [/^gateway\//, /^\.\.\/(http|admin|cli)\/|^\.\.\/app/],
  [/^http\//, /^\.\.\/(admin|cli)\/|^\.\.\/app/],
  [/^admin\//, /^\.\.\/cli\/|^\.\.\/app/],
];

t.test("each third-party library is imported only in its home", async (t) => {
  for (const { file, imports } of sources()) {
    for (const spec of imports) {
      const home = LIBRARY_HOMES[spec];
      if (home) t.match(file, home, `${file} imports ${spec}`);
    }
  }
});

t.test("dependencies point one way", async (t) => {
  for (const { file, imports } of sources()) {
    for (const [folder, banned] of FORBIDDEN) {
      if (!folder.test(file)) continue;
      const offending = imports.filter((spec) => banned.test(spec));
      t.same(offending, [], `${file} must not import ${offending.join(", ")}`);
    }
  }
});
