/**
 * The one place outside tests that reads the process environment. Everything else takes the
 * values it needs from here or from the loaded configuration.
 */
export type Environment = Readonly<Record<string, string | undefined>>;

export function processEnvironment(): Environment {
  return process.env;
}

/** One variable, by a name the operator chose (e.g. `--password-env`). */
export function environmentVariable(name: string): string | undefined {
  return process.env[name];
}

/** The CA passphrase variable: read before `<pki.dir>/ca-passphrase`, after a passphrase file. */
export const PASSPHRASE_ENV = "POSTERN_CA_PASSPHRASE";

/** Where admin commands reach the admin API when `--admin-url` is not given: POSTERN_ADMIN_URL wins. */
export const ADMIN_URL_ENV = "POSTERN_ADMIN_URL";
