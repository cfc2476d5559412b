import { hostname } from "node:os";
import { createApp, type ListeningAddresses } from "../app.js";
import { ConfigError, loadConfig } from "../config/load.js";
import { createLogger } from "../log.js";

export const summary = "run the gateway (data plane, admin plane, public + metrics listener)";

/** Runs the gateway until SIGINT or SIGTERM, then drains and resolves with the exit code. */
export async function runServe(_args: string[]): Promise<number> {
  const log = createLogger();
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`postern: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  let app;
  let addresses: ListeningAddresses;
  try {
    app = await createApp(config, { log });
    addresses = await app.start();
  } catch (error) {
    process.stderr.write(`postern: ${error instanceof ConfigError ? "" : "cannot start: "}${(error as Error).message}\n`);
    await app?.stop().catch(() => undefined);
    // Everything opened was closed, but a client library may keep a handle (a reconnect
    // timer) alive: a start that failed must end the process, or no supervisor restarts it.
    setTimeout(() => process.exit(process.exitCode ?? 1), 2000).unref();
    return error instanceof ConfigError ? 2 : 1;
  }
  printBanner(app.mode, app.pkiCreated, config.pki.dir, config.pki.passphraseFile ?? `${config.pki.dir}/ca-passphrase`, addresses);
  if (app.mode === "embedded") {
    log.warn("embedded mode: replay protection and the message file live in this one process; run a single instance, or set POSTERN_REDIS_URL for several replicas");
  }
  process.on("SIGHUP", () => {
    void (async () => {
      try {
        const { restartNeeded } = await app.reload(loadConfig());
        log.info("configuration reloaded: routes, backends, signature policy and signing keys", {
          ...(restartNeeded.length ? { notApplied: restartNeeded, note: "these sections need a restart" } : {}),
        });
      } catch (error) {
        log.error("configuration reload failed; the running configuration stays", { error: (error as Error).message });
      }
    })();
  });
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  log.info("draining", { signal });
  await app.stop();
  log.info("stopped");
  return 0;
}

function printBanner(mode: string, created: boolean, pkiDir: string, passphraseFile: string, a: ListeningAddresses): void {
  const host = (h: string) => (h === "0.0.0.0" || h === "::" ? "localhost" : h.includes(":") ? `[${h}]` : h);
  const lines = [
    `Postern is running in ${mode === "embedded" ? "embedded mode (single instance: no Redis configured)" : "Redis mode (replicas may share this Redis)"}`,
    `  data plane (mTLS)   https://${host(a.data.host)}:${a.data.port}`,
    `  admin plane (mTLS)  https://${host(a.admin.host)}:${a.admin.port}`,
    `  public + metrics    http://${host(a.public.host)}:${a.public.port}  (/metrics /healthz /readyz /ca.pem)`,
    `  PKI                 ${pkiDir}/ ${created ? "(created now: root + issuing CA, server certificate, signing key, demo and admin client certificates)" : "(loaded)"}`,
    ...(created && !process.env.POSTERN_CA_PASSPHRASE
      ? [`  CA passphrase       ${passphraseFile} (0600; it encrypts the CA keys: keep a copy in your secret store)`]
      : []),
    `  host name           ${hostname()}`,
    "Send a first message:",
    `  npx postern send --url https://${host(a.data.host)}:${a.data.port}/v1/messages/demo --cert ${pkiDir}/demo-client.crt --key ${pkiDir}/demo-client.key --ca ${pkiDir}/ca-bundle.pem --data '{"hello":"world"}'`,
    "",
  ];
  process.stdout.write(lines.join("\n"));
}
