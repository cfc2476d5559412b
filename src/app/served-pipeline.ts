import type { PosternConfig } from "../config/index.js";
import type { Backend } from "../forward/index.js";
import { type BackendSealing, Gateway, type GatewayDeps, RouteTable } from "../gateway/index.js";
import type { Logger } from "../log.js";
import { buildBackends, type BackendDeps } from "./backends.js";
import { loadSealing } from "./sealing.js";

/** What the pipeline serves from one configuration: its routes and policy, its backends, its sealing keys. */
export interface ServedState {
  config: Readonly<PosternConfig>;
  backends: ReadonlyMap<string, Backend>;
  sealing: ReadonlyMap<string, BackendSealing>;
}

/** How often the sealing backends' public keys are read again (a rotation arrives as a new jwks.json). */
const SEALING_REFRESH_MS = 60_000;

/**
 * The part of the pipeline that a reload replaces, the same in one process and in each cluster
 * worker: a new configuration (SIGHUP), new TLS material (HTTP backends present the server
 * certificate as their client certificate) and rotated sealing keys each build what they change
 * and hand the whole state to `serve` (the gateway's `configure`). Changes run one at a time;
 * one that fails keeps what is served. Replaced backends are closed once the requests in
 * flight on them have had the drain timeout to finish.
 */
export class ServedPipeline {
  private serve: (state: ServedState) => void = () => undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;

  private constructor(
    private state: ServedState,
    private readonly backendDeps: BackendDeps,
    private readonly log: Logger,
  ) {
    this.timer = setInterval(() => void this.refreshSealing(), SEALING_REFRESH_MS);
    this.timer.unref();
  }

  static async open(config: Readonly<PosternConfig>, deps: { backendDeps: BackendDeps; log: Logger }): Promise<ServedPipeline> {
    const sealing = await loadSealing(config);
    const backends = await buildBackends(config, deps.backendDeps);
    return new ServedPipeline({ config, backends, sealing }, deps.backendDeps, deps.log);
  }

  get current(): ServedState {
    return this.state;
  }

  /** The gateway pipeline over this state, configured again with each change (call once). */
  gateway(deps: Pick<GatewayDeps, "keys" | "rateLimiter" | "metrics" | "now">): Gateway {
    const from = (state: ServedState) => ({ routes: new RouteTable(state.config.routes), backends: state.backends, sealing: state.sealing, signature: state.config.signature });
    const gateway = new Gateway({ ...from(this.state), ...deps });
    this.serve = (state) => gateway.configure(from(state));
    return gateway;
  }

  /** Serves `config`: new backends and sealing keys; rejects (serving the state before) when one cannot be built. */
  apply(config: Readonly<PosternConfig>): Promise<void> {
    return this.change(async () => {
      const sealing = await loadSealing(config);
      return { config, sealing, backends: await buildBackends(config, this.backendDeps) };
    });
  }

  /** The TLS material changed: HTTP backends are built again to present the new client certificate. */
  refreshTlsClients(): Promise<void> {
    const { config } = this.state;
    if (!Object.values(config.backends).some((backend) => backend.type === "http")) return Promise.resolve();
    return this.change(async () => ({ ...this.state, backends: await buildBackends(this.state.config, this.backendDeps) })).then(
      () => this.log.info("HTTP backends present the reloaded server certificate to new connections"),
      (error: Error) => this.log.error("HTTP backends could not be built with the reloaded server certificate; they keep the one before", { error: error.message }),
    );
  }

  /** Reads the sealing backends' public keys again; a file that cannot be read keeps the keys in use. */
  refreshSealing(): Promise<void> {
    if (!Object.values(this.state.config.backends).some((backend) => backend.sealing)) return Promise.resolve();
    return this.change(async () => ({ ...this.state, sealing: await loadSealing(this.state.config) })).catch((error: Error) =>
      this.log.error("re-reading backend sealing keys failed; the keys in use stay", { error: error.message }),
    );
  }

  /** Stops the refresh and closes the backends served now. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.queue;
    await closeAll(this.state.backends);
  }

  private change(build: () => Promise<ServedState>): Promise<void> {
    const next = this.queue.then(async () => {
      const before = this.state;
      const fresh = await build();
      this.state = fresh;
      this.serve(fresh);
      if (fresh.backends !== before.backends) {
        setTimeout(() => void closeAll(before.backends), fresh.config.shutdown.drainTimeoutSeconds * 1000).unref();
      }
    });
    this.queue = next.catch(() => undefined);
    return next;
  }
}

function closeAll(backends: ReadonlyMap<string, Backend>): Promise<unknown> {
  return Promise.all([...backends.values()].map((backend) => backend.close()));
}
