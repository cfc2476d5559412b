/**
 * Where Postern keeps what it writes, from the configuration, with each default resolved in
 * this one place: the PKI runtime opens these paths, and the read-only check below proves
 * none of them lies inside a PKI directory that must not be written.
 */
import { join, relative, resolve, isAbsolute } from "node:path";

/** The parts of a configuration the locations depend on. */
export interface LocationInput {
  pki: {
    dir: string;
    storeDir?: string | undefined;
    stateDir?: string | undefined;
    signingKeysDir?: string | undefined;
    auditLogPath?: string | undefined;
  };
  data: { dir: string };
}

/** A place Postern writes, under the configuration key that moves it. */
export interface WritableLocation {
  key: "pki.storeDir" | "pki.stateDir" | "pki.signingKeysDir" | "pki.auditLogPath" | "data.dir";
  path: string;
}

/** The directories and files Postern writes at runtime (besides the PKI directory's own bootstrap). */
export function stateLocations(config: LocationInput): {
  storeDir: string;
  stateDir: string;
  signingKeysDir: string;
  auditLogPath: string;
  dataDir: string;
} {
  return {
    storeDir: config.pki.storeDir ?? join(config.pki.dir, "store"),
    stateDir: config.pki.stateDir ?? join(config.pki.dir, "state"),
    signingKeysDir: config.pki.signingKeysDir ?? join(config.pki.dir, "signing-keys"),
    auditLogPath: config.pki.auditLogPath ?? join(config.data.dir, "audit.jsonl"),
    dataDir: config.data.dir,
  };
}

/**
 * The writable locations that lie inside `pki.dir` (or are it), for a configuration with
 * `pki.readOnly`. `embedded` says whether the file store and `data.dir` are in use (without
 * Redis); in Redis mode neither is opened, so neither counts.
 */
export function locationsInsidePkiDir(config: LocationInput, embedded: boolean): WritableLocation[] {
  const at = stateLocations(config);
  const all: WritableLocation[] = [
    { key: "pki.stateDir", path: at.stateDir },
    { key: "pki.signingKeysDir", path: at.signingKeysDir },
    { key: "pki.auditLogPath", path: at.auditLogPath },
    ...(embedded ? [{ key: "pki.storeDir", path: at.storeDir } as const, { key: "data.dir", path: at.dataDir } as const] : []),
  ];
  return all.filter((location) => isInsideDir(location.path, config.pki.dir));
}

/** Whether `path` is `dir` or lies under it (after resolving both). */
export function isInsideDir(path: string, dir: string): boolean {
  const rel = relative(resolve(dir), resolve(path));
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}
