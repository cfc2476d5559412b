import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { freePort } from "../helpers/net.js";
import { finished, spawnTs } from "../helpers/process.js";
import { startReplica, stopReplicas } from "../helpers/replica.js";

// The file's time, as long as its tests may take together (.taprc's 120 s would cut them short).
t.setTimeout(180_000);

t.test("CLI commands follow the same environment as the gateway: PKI dir, data dir, admin listener", { timeout: 180_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "postern-cli-env-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const env = {
    POSTERN_PKI_DIR: join(dir, "pki-x"),
    POSTERN_DATA_DIR: join(dir, "data-y"),
    POSTERN_DATA_PORT: String(await freePort()),
    POSTERN_ADMIN_PORT: String(await freePort()),
    POSTERN_PUBLIC_PORT: String(await freePort()),
  };
  const gateway = await startReplica(dir, env);
  t.teardown(() => stopReplicas(gateway));
  // A working directory with no certs/ or data/ of its own: everything must come from the environment.
  const elsewhere = await mkdtemp(join(tmpdir(), "postern-cli-cwd-"));
  t.teardown(() => rm(elsewhere, { recursive: true, force: true }));
  const cli = (args: string[]) => finished(spawnTs("src/cli/main.ts", args, { cwd: elsewhere, env }));

  const list = await cli(["cert", "list", "--json"]);
  t.equal(list.code, 0, list.stderr);
  const identities = (JSON.parse(list.stdout) as { items: Array<{ identity: string }> }).items.map((i) => i.identity);
  t.ok(identities.includes("spiffe://postern.local/client/demo"), "the gateway's inventory, through its own admin listener and admin certificate");

  const sent = await cli(["send", "--data", '{"from":"env"}']);
  t.equal(sent.code, 0, sent.stderr);
  t.equal(JSON.parse(sent.stdout).status, 202, "send reaches the configured data listener with the PKI directory's demo certificate");

  const keys = await cli(["keys", "list"]);
  t.equal(keys.code, 0, keys.stderr);
  t.match(keys.stdout, /active/);

  const audit = await cli(["audit", "verify"]);
  t.equal(audit.code, 0, audit.stderr);
  t.match(audit.stdout, /^ok, \d+ lines/, "the audit log under POSTERN_DATA_DIR");

  const missing = await finished(spawnTs("src/cli/main.ts", ["cert", "list"], { cwd: elsewhere, env: { ...env, POSTERN_PKI_DIR: join(dir, "nowhere") } }));
  t.equal(missing.code, 1);
  t.match(missing.stderr, /cannot read the admin certificate .*nowhere\/admin\.crt/, "a missing file is named");
  t.notMatch(missing.stderr, /\n\s+at /, "no stack trace");
});
