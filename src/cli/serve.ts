import cluster from "node:cluster";
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { ClusterChannel, createApp, createWorkerApp, type ListeningAddresses, installCrashPolicy, workerCount } from "../app/index.js";
import { ConfigError, loadConfig, PASSPHRASE_ENV, processEnvironment } from "../config/index.js";
import { createLogger } from "../log.js";

export const usage = `postern start [--config FILE]
  --config FILE   the configuration file (default: POSTERN_CONFIG, else config/postern.yaml)
Everything else comes from the configuration file and the POSTERN_* environment variables
(see README, Configuration); "postern config check" checks them without starting.
Stops on SIGINT (drain) or SIGTERM (not ready for shutdown.readinessDelaySeconds, then drain).
SIGHUP reloads routes, backends, the signature policy and the signing keys, and the server
certificate, its key and the CA bundle for new handshakes (file changes are picked up anyway). With workers, the primary passes
SIGHUP on to every worker.`;

/** Runs the gateway until SIGINT or SIGTERM, then drains and resolves with the exit code. */
export async function runServe(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: "string" } }, strict: true, allowPositionals: false });
  const env = values.config === undefined ? processEnvironment() : { ...processEnvironment(), POSTERN_CONFIG: values.config };
  let config;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`postern: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const log = createLogger({ level: config.log.level, ...(config.log.pretty !== undefined ? { pretty: config.log.pretty } : {}) });
  if (cluster.isWorker) return runWorker(config, env, log);
  const workers = workerCount(config);
  let app: Awaited<ReturnType<typeof createApp>> | undefined;
  let addresses: ListeningAddresses;
  let stopWith: ((signal: string) => void) | undefined;
  let fatalExit = false;
  installCrashPolicy(process, {
    log,
    count: () => app?.metrics.uncaughtError(),
    onFatal: () => {
      log.error("too many uncaught errors: draining and exiting for a restart");
      fatalExit = true;
      stopWith?.("fatal");
    },
  });
  try {
    app = await createApp(config, { log, workers });
    addresses = await app.start();
  } catch (error) {
    process.stderr.write(`postern: ${error instanceof ConfigError ? "" : "cannot start: "}${(error as Error).message}\n`);
    await app?.stop().catch(() => undefined);
    // Everything opened was closed, but a client library may keep a handle (a reconnect
    // timer) alive: a start that failed must end the process, or no supervisor restarts it.
    setTimeout(() => process.exit(process.exitCode ?? 1), 2000).unref();
    return error instanceof ConfigError ? 2 : 1;
  }
  printBanner(app.mode, app.pkiCreated, config.pki.readOnly, config.pki.dir, config.pki.passphraseFile ?? `${config.pki.dir}/ca-passphrase`, addresses, app.workerPids());
  if (app.mode === "embedded") {
    log.warn(`embedded mode: replay protection and the message file live in this one ${workers > 1 ? "primary process (its workers reach them over the cluster channel)" : "process"}; run a single instance, or set POSTERN_REDIS_URL for several replicas`);
  }
  process.on("SIGHUP", () => {
    // A change or a refusal logs itself (with the file and the reason); an unchanged set says so here.
    void app.reloadTls().then(
      (outcome) => {
        if (outcome.status === "unchanged") log.info("TLS material unchanged: new handshakes keep the current certificate", { serial: outcome.serial });
      },
      (error: unknown) => log.error("TLS reload failed", { error: (error as Error).message }),
    );
    app.signalWorkers("SIGHUP");
    void (async () => {
      try {
        const { restartNeeded } = await app.reload(loadConfig(env));
        log.info("configuration reloaded: routes, backends, signature policy and signing keys", {
          ...(restartNeeded.length ? { notApplied: restartNeeded, note: "these sections need a restart" } : {}),
        });
        app.metrics.reloaded("config");
      } catch (error) {
        app.metrics.reloadFailed("config");
        log.error("configuration reload failed; the running configuration stays", { error: (error as Error).message });
      }
    })();
  });
  const signal = await new Promise<string>((resolve) => {
    stopWith = resolve;
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  // An orchestrator's SIGTERM: first not ready while still serving, so the load balancer takes
  // this instance out before its listeners close (a person's Ctrl-C skips the wait, and so
  // does a second signal).
  const delaySeconds = signal === "SIGTERM" ? config.shutdown.readinessDelaySeconds : 0;
  if (delaySeconds > 0) {
    app.beginShutdown();
    log.info("not ready; still serving until the load balancer notices", { signal, seconds: delaySeconds });
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, delaySeconds * 1000);
      const cut = () => {
        clearTimeout(timer);
        resolve();
      };
      process.once("SIGINT", cut);
      process.once("SIGTERM", cut);
    });
  }
  log.info("draining", { signal });
  await app.stop();
  log.info("stopped");
  return fatalExit ? 70 : 0;
}

/**
 * A cluster worker: serves the data listener until the primary says drain (or its channel
 * closes, or SIGTERM), then exits. SIGHUP reloads its own routes, backends and signing keys;
 * SIGINT is the primary's to act on (a terminal's Ctrl-C reaches the whole group).
 */
async function runWorker(config: Awaited<ReturnType<typeof loadConfig>>, env: ReturnType<typeof processEnvironment>, log: ReturnType<typeof createLogger>): Promise<number> {
  const channel = new ClusterChannel({
    // After the primary has gone, a send would be an 'error' event with nobody listening.
    send: (message) => {
      if (process.connected) process.send?.(message);
    },
    onMessage: (listener) => process.on("message", listener),
    onClose: (listener) => process.once("disconnect", listener),
  });
  let stopWith: ((reason: string) => void) | undefined;
  let fatalExit = false;
  let app: Awaited<ReturnType<typeof createWorkerApp>> | undefined;
  installCrashPolicy(process, {
    log,
    count: () => app?.metrics.uncaughtError(),
    onFatal: () => {
      log.error("too many uncaught errors: this worker drains and exits; the primary replaces it");
      fatalExit = true;
      stopWith?.("fatal");
    },
  });
  process.on("SIGINT", () => undefined);
  const stopped = new Promise<string>((resolve) => {
    stopWith = resolve;
    channel.handle("drain", () => resolve("drain"));
    process.once("disconnect", () => resolve("primary gone"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });
  try {
    app = await createWorkerApp(config, { log, channel });
    await app.start();
  } catch (error) {
    process.stderr.write(`postern: worker cannot start: ${(error as Error).message}\n`);
    await app?.stop().catch(() => undefined);
    setTimeout(() => process.exit(1), 2000).unref();
    if (process.connected) process.disconnect();
    return 1;
  }
  process.on("SIGHUP", () => {
    void (async () => {
      try {
        const { restartNeeded } = await app.reload(loadConfig(env));
        log.info("worker configuration reloaded", restartNeeded.length ? { notApplied: restartNeeded } : {});
      } catch (error) {
        log.error("worker configuration reload failed; the running configuration stays", { error: (error as Error).message });
      }
    })();
  });
  const reason = await stopped;
  await app.stop();
  log.info("worker stopped", { reason });
  // The channel to the primary keeps this process alive: let go of it.
  if (process.connected) process.disconnect();
  return fatalExit ? 70 : 0;
}

function printBanner(mode: string, created: boolean, readOnly: boolean, pkiDir: string, passphraseFile: string, a: ListeningAddresses, workerPids: number[]): void {
  const clientDir = readOnly ? "BOOTSTRAP_DIR" : pkiDir;
  const host = (h: string) => (h === "0.0.0.0" || h === "::" ? "localhost" : h.includes(":") ? `[${h}]` : h);
  const lines = [
    `Postern is running in ${mode === "embedded" ? "embedded mode (single instance: no Redis configured)" : "Redis mode (replicas may share this Redis)"}`,
    `  data plane (mTLS)   https://${host(a.data.host)}:${a.data.port}`,
    ...(workerPids.length > 0 ? [`  workers             ${workerPids.length} (pids ${workerPids.join(", ")}), the data listener shared`] : []),
    `  admin plane (mTLS)  https://${host(a.admin.host)}:${a.admin.port}`,
    `  public + metrics    http://${host(a.public.host)}:${a.public.port}  (/metrics /healthz /readyz /ca.pem)`,
    `  PKI                 ${pkiDir}/ ${created ? "(created now: root + issuing CA, server certificate, signing key, demo and admin client certificates)" : readOnly ? "(loaded, read-only: pki.readOnly)" : "(loaded)"}`,
    ...(created && !processEnvironment()[PASSPHRASE_ENV]
      ? [`  CA passphrase       ${passphraseFile} (0600; it encrypts the CA keys: keep a copy in your secret store)`]
      : []),
    `  host name           ${hostname()}`,
    // A read-only PKI directory holds no client credentials: they stayed where it was bootstrapped.
    `Send a first message${readOnly ? " (with the demo certificate from the directory the PKI was bootstrapped in)" : ""}:`,
    `  npx postern send --url https://${host(a.data.host)}:${a.data.port}/v1/messages/demo --cert ${clientDir}/demo-client.crt --key ${clientDir}/demo-client.key --ca ${pkiDir}/ca-bundle.pem --data '{"hello":"world"}'`,
    "",
  ];
  process.stdout.write(lines.join("\n"));
}
