import { execFile } from "node:child_process";
import { promisify } from "node:util";
import t from "tap";
import { KEY_TYPES, REVOCATION_REASON_NAMES } from "../../src/client/index.js";
import { KEY_ALGORITHMS, REVOCATION_REASONS } from "../../src/pki/index.js";
import { ROOT } from "../helpers/process.js";

const run = promisify(execFile);

t.test("the client's names for key types and revocation reasons are the PKI's", async (t) => {
  t.same([...KEY_TYPES], [...KEY_ALGORITHMS]);
  t.same([...REVOCATION_REASON_NAMES], Object.keys(REVOCATION_REASONS).filter((r) => r !== "removeFromCRL"));
});

/** The CommonJS packages (node_modules/<name>) a fresh process has loaded after importing the built `module`. */
async function packagesLoadedBy(module: string): Promise<string[]> {
  const script = `
    import { createRequire } from "node:module";
    await import(${JSON.stringify(`${ROOT}/dist/${module}`)});
    const names = Object.keys(createRequire(import.meta.url).cache).map((p) => /node_modules\\/((@[^/]+\\/)?[^/]+)/.exec(p)?.[1]).filter(Boolean);
    process.stdout.write(JSON.stringify([...new Set(names)]));`;
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], { cwd: ROOT });
  return JSON.parse(stdout) as string[];
}

t.test("commands that only call the admin API start without the PKI's libraries (about half a second less)", async (t) => {
  for (const command of ["cert", "token", "explain"]) {
    const loaded = await packagesLoadedBy(`cli/${command}.js`);
    for (const heavy of ["@peculiar/x509", "ioredis", "node-forge"]) t.notOk(loaded.includes(heavy), `${command} does not load ${heavy}`);
  }
  t.ok((await packagesLoadedBy("cli/init.js")).includes("@peculiar/x509"), "(the probe sees them where they are loaded: init makes a CA)");
});

t.test("the gateway loads ioredis, undici and node-forge only when it uses them (about 200 ms of its start)", async (t) => {
  for (const module of ["cli/serve.js", "app/index.js"]) {
    const loaded = await packagesLoadedBy(module);
    for (const lazy of ["ioredis", "undici", "node-forge"]) t.notOk(loaded.includes(lazy), `${module} does not load ${lazy} when imported`);
    t.ok(loaded.includes("prom-client"), `(the probe sees what ${module} does load)`);
  }
});
