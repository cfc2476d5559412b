import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { isInsideDir, stateLocations } from "../config/index.js";
import {
  backendJwksPath,
  createBackendKeyRing,
  DEFAULT_SEAL_OVERLAP_SECONDS,
  readBackendKeyRing,
  rotateBackendKeyRing,
  SEAL_ALGORITHMS,
  SEAL_CURVES,
  type BackendKeyRingState,
  type SealAlgorithm,
  type SealCurve,
} from "../sealed/index.js";
import { cliDefaults } from "./defaults.js";
import { parseDurationSeconds } from "./duration-flag.js";
import { UsageError } from "./usage.js";


/** `postern keys backend ...`. */
export async function runKeysBackend(args: string[]): Promise<number> {
  const [action, backend, ...rest] = args;
  if (action !== "create" && action !== "rotate" && action !== "list") {
    throw new UsageError(action === undefined ? "give an action: create, rotate or list" : `unknown action ${JSON.stringify(action)}`);
  }
  if (backend === undefined || !/^[A-Za-z0-9._-]{1,64}$/.test(backend)) throw new UsageError("give the backend's name (1-64 of [A-Za-z0-9._-])");
  const { values } = parseArgs({
    args: rest,
    options: { dir: { type: "string" }, alg: { type: "string" }, curve: { type: "string" }, overlap: { type: "string" } },
    strict: true,
    allowPositionals: false,
  });
  if (action !== "create" && (values.alg !== undefined || values.curve !== undefined)) throw new UsageError("--alg and --curve apply to create only");
  if (action !== "rotate" && values.overlap !== undefined) throw new UsageError("--overlap applies to rotate only");
  const dir = values.dir ?? join("backend-keys", backend);
  refuseGatewayDirs(dir);
  if (action === "create") {
    const alg = values.alg ?? "ECDH-ES+A256KW";
    const crv = values.curve ?? "X25519";
    if (!(SEAL_ALGORITHMS as readonly string[]).includes(alg)) throw new UsageError(`--alg must be one of ${SEAL_ALGORITHMS.join(", ")}`);
    if (!(SEAL_CURVES as readonly string[]).includes(crv)) throw new UsageError(`--curve must be one of ${SEAL_CURVES.join(", ")}`);
    const state = await createBackendKeyRing(dir, { backend, alg: alg as SealAlgorithm, crv: crv as SealCurve });
    process.stdout.write(
      `created the key ring of backend ${backend} in ${dir} (${state.crv}, ${state.alg} with A256GCM)\n`
      + `active key ${state.active}\n`
      + `private keys: ${dir}/<kid>.key (0600): for the consumer only\n`
      + `public keys:  ${backendJwksPath(dir)}: copy it to the gateway and set backends.${backend}.sealing.publicKeys\n`,
    );
    return 0;
  }
  if (action === "rotate") {
    const overlapSeconds = values.overlap === undefined ? DEFAULT_SEAL_OVERLAP_SECONDS : parseDurationSeconds(values.overlap, "--overlap");
    const result = await rotateBackendKeyRing(dir, { overlapSeconds });
    process.stdout.write(
      `new active key ${result.state.active}\n`
      + `retired ${result.retiredKid}, current until ${new Date(result.retiredPublishUntilMs).toISOString()}\n`
      + result.prunedKids.map((kid) => `pruned ${kid} (its overlap had passed)\n`).join("")
      + `Copy ${backendJwksPath(dir)} to the gateway again; it re-reads it on SIGHUP or within a minute.\n`,
    );
    return 0;
  }
  process.stdout.write(describe(await readBackendKeyRing(dir), Date.now()));
  return 0;
}

/** The gateway's own directories are no place for a backend's private keys. */
function refuseGatewayDirs(dir: string): void {
  const { config } = cliDefaults();
  const at = stateLocations(config);
  for (const [key, path] of [["pki.dir", config.pki.dir], ["pki.signingKeysDir", at.signingKeysDir], ["data.dir", config.data.dir]] as const) {
    if (isInsideDir(dir, path)) throw new UsageError(`${dir} is inside ${key} (${resolve(path)}): a backend's private keys stay with its consumer, never among the gateway's files`);
  }
}

function describe(state: BackendKeyRingState, nowMs: number): string {
  const iso = (ms: number) => new Date(ms).toISOString();
  const lines = [...state.keys]
    .sort((a, b) => (a.kid === state.active ? -1 : b.kid === state.active ? 1 : b.createdAtMs - a.createdAtMs))
    .map((e) => {
      const status = e.kid === state.active
        ? "active"
        : (e.publishUntilMs ?? 0) > nowMs ? `current until ${iso(e.publishUntilMs ?? 0)}` : `expired ${iso(e.publishUntilMs ?? 0)}`;
      return `${e.kid}  ${status.padEnd(40)}  ${iso(e.createdAtMs)}\n`;
    });
  return `backend ${state.backend}: ${state.crv}, ${state.alg} with A256GCM\n${"KID".padEnd(43)}  ${"STATUS".padEnd(40)}  CREATED\n${lines.join("")}`;
}
