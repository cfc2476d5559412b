import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import t from "tap";
import { ROOT } from "../helpers/process.js";
import { ALLOWED_ROOMS, layoutViolations, throughFrontDoor, type SourceFile } from "./rules.js";

/** Every source file with the module specifiers it imports. */
function sources(dir = join(ROOT, "src")): SourceFile[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    if (!name.endsWith(".ts")) return [];
    const text = readFileSync(path, "utf8");
    const imports = [...text.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g), ...text.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]!);
    return [{ file: relative(join(ROOT, "src"), path).split(sep).join("/"), imports }];
  });
}

t.test("the layout holds: front doors, one home per library, dependencies one way", async (t) => {
  t.same(layoutViolations(sources()), []);
});

t.test("only config/ reads the process environment", async (t) => {
  const readers = sources()
    .filter(({ file }) => !file.startsWith("config/"))
    .filter(({ file }) => /process\.env\b/.test(readFileSync(join(ROOT, "src", file), "utf8")));
  t.same(readers.map((s) => s.file), []);
});

t.test("the rules catch what they are for (a test of the test)", async (t) => {
  const base: SourceFile[] = [
    { file: "pki/index.ts", imports: ["./status/index.js"] },
    { file: "pki/status/index.ts", imports: ["./crl.js"] },
    { file: "pki/status/crl.ts", imports: ["../der/index.js", "../../errors.js"] },
    { file: "pki/der/index.ts", imports: [] },
    { file: "gateway/index.ts", imports: ["../pki/index.js"] },
  ];
  t.same(layoutViolations(base), [], "a clean layout passes");
  const deep = [...base, { file: "gateway/explain.ts", imports: ["../pki/status/crl.js"] }];
  t.match(layoutViolations(deep), [/gateway\/explain\.ts imports pki\/status\/crl\.ts past its folder's index\.ts/], "a deep import from outside a folder");
  const nested = [...base, { file: "pki/authority.ts", imports: ["./status/crl.js"] }];
  t.match(layoutViolations(nested), [/past its folder's index\.ts/], "a nested folder's front door counts too");
  const sibling = [...base, { file: "pki/der/x.ts", imports: ["../status/crl.js"] }];
  t.match(layoutViolations(sibling), [/past its folder's index\.ts/], "a sibling room's file");
  const upward = [...base, { file: "pki/status/ocsp.ts", imports: ["../../gateway/index.js"] }];
  t.match(layoutViolations(upward), [/pki\/status\/ocsp\.ts imports gateway\/, which pki may not use/], "a leaf importing a layer above it");
  const library = [...base, { file: "gateway/x.ts", imports: ["ioredis"] }];
  t.match(layoutViolations(library), [/gateway\/x\.ts imports ioredis/], "a library outside its home");
  const noDoor = [...base, { file: "tls/admission.ts", imports: [] }];
  t.match(layoutViolations(noDoor), [/tls\/ has no index\.ts/], "a folder without a front door");
  t.ok(throughFrontDoor("app/create-app.ts", "pki/index.ts"));
  t.notOk(throughFrontDoor("app/create-app.ts", "pki/authority.ts"));
  t.ok(throughFrontDoor("pki/status/crl.ts", "pki/identity.ts"), "a file of an enclosing folder");
});

t.test("CONTRIBUTING.md's room table says what the rules say, for every room there is", async (t) => {
  const text = readFileSync(join(ROOT, "CONTRIBUTING.md"), "utf8");
  const rows = [...text.matchAll(/^\| `([a-z-]+)` \| [^|]+ \| ([^|]+) \|$/gm)].map((m) => [m[1]!, m[2]!.trim()] as const);
  const documented = Object.fromEntries(rows.map(([room, may]) => [room, may === "(none)" ? [] : [...may.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]!)]));
  t.same(documented, Object.fromEntries(Object.entries(ALLOWED_ROOMS).map(([room, may]) => [room, [...may]])));
  const folders = readdirSync(join(ROOT, "src")).filter((name) => statSync(join(ROOT, "src", name)).isDirectory());
  t.same(folders.sort(), Object.keys(documented).sort(), "every room under src/ is in the table, and no other");
});
