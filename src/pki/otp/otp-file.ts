/**
 * `admin-otp.json` in the PKI state directory: who enrolled a second factor, their sealed
 * TOTP secrets, the last time step each accepted (a code is spent once) and their recent
 * failures (the rate limit). Every change happens under the file's lock, read-modify-write, so
 * gateway workers, replicas sharing the state volume and the CLI see one sequence of uses.
 */
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { readStateFile, withFileMutex, writeFileAtomic } from "../../storage/index.js";

export const OTP_FILE = "admin-otp.json";

export interface OtpAdminEntry {
  /** `sealSecret`'s output. */
  secret: string;
  enrolledAtMs: number;
  /** The last accepted TOTP time step; a code of this step or an earlier one is refused. */
  lastStep?: number;
  /** Times (ms) of refused codes within the failure window. */
  failuresMs?: number[];
}

export interface OtpState {
  version: 1;
  /** base64 salt of the key derivation. */
  salt: string;
  admins: Record<string, OtpAdminEntry>;
}

/** The file's state; undefined when nobody ever enrolled. `internal` when it is damaged. */
export function readOtpState(path: string): Promise<OtpState | undefined> {
  return readStateFile(path, (parsed) => {
    const value = parsed as Partial<OtpState>;
    if (value.version !== 1 || typeof value.salt !== "string" || typeof value.admins !== "object" || value.admins === null) throw new Error("unknown shape");
    for (const entry of Object.values(value.admins)) {
      if (typeof entry?.secret !== "string" || typeof entry.enrolledAtMs !== "number") throw new Error("an entry lacks its secret");
    }
    return value as OtpState;
  });
}

/**
 * Runs `change` on the current state under the file's lock and writes what it returns
 * (nothing is written when it returns undefined). `change` may throw after deciding to write:
 * return `{ state, error }` for that (a refused code still counts as a failure).
 */
export async function updateOtpState<T>(
  path: string,
  change: (state: OtpState | undefined) => Promise<{ state?: OtpState; result?: T; error?: unknown }>,
): Promise<T> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const outcome = await withFileMutex(`${path}.lock`, async () => {
    const done = await change(await readOtpState(path));
    if (done.state) await writeFileAtomic(path, JSON.stringify(done.state, null, 2) + "\n", { mode: 0o600 });
    return done;
  });
  if (outcome.error !== undefined) throw outcome.error;
  return outcome.result as T;
}
