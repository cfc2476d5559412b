import { join } from "node:path";
import { createInterface } from "node:readline/promises";
import { AdminClient, PosternRequestError } from "../client/index.js";
import { cliDefaults } from "./defaults.js";
import { readNamed } from "./files.js";

/**
 * Options every admin command takes. A flag left out comes from the configuration `postern
 * start` loads (POSTERN_CONFIG and the POSTERN_* variables), so the command reaches the same
 * gateway with the same PKI directory's admin certificate.
 */
export const ADMIN_OPTIONS = {
  "admin-url": { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  ca: { type: "string" },
  otp: { type: "string" },
} as const;

export const ADMIN_USAGE = `  --admin-url URL      admin API (default POSTERN_ADMIN_URL, else the configured admin listener)
  --cert FILE          admin certificate chain (default <pki.dir>/admin.crt)
  --key FILE           admin key (default <pki.dir>/admin.key)
  --ca FILE            CA bundle (default <pki.dir>/ca-bundle.pem)
  --otp CODE           the current one-time code of the admin's second factor (postern admin otp
                       enroll); without it the code is asked for on a terminal when needed
  pki.dir and the listeners come from the configuration (POSTERN_CONFIG, POSTERN_PKI_DIR, ...)`;

export async function adminClient(values: { "admin-url"?: string | undefined; cert?: string | undefined; key?: string | undefined; ca?: string | undefined; otp?: string | undefined }): Promise<AdminClient> {
  const missing = values["admin-url"] === undefined || values.cert === undefined || values.key === undefined || values.ca === undefined;
  const defaults = missing ? cliDefaults() : undefined;
  const inPki = (file: string) => join(defaults!.pkiDir, file);
  const paths = { cert: values.cert ?? inPki("admin.crt"), key: values.key ?? inPki("admin.key"), ca: values.ca ?? inPki("ca-bundle.pem") };
  return new AdminClient({
    url: values["admin-url"] ?? defaults!.adminUrl,
    cert: await readNamed(paths.cert, "admin certificate"),
    key: await readNamed(paths.key, "admin key"),
    ca: await readNamed(paths.ca, "CA bundle"),
    ...(values.otp !== undefined ? { otp: values.otp } : {}),
  });
}

/**
 * Runs an admin call; when the gateway answers `otp-required` and no --otp was given, asks
 * for the code on a terminal and runs it once more (a refused call changed nothing). Without
 * a terminal the refusal stands, naming --otp.
 */
export async function withSecondFactor<T>(client: AdminClient, given: string | undefined, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (!(error instanceof PosternRequestError) || error.code !== "otp-required" || given !== undefined) throw error;
    if (!process.stdin.isTTY || !process.stderr.isTTY) throw new PosternRequestError(error.status, { ...error.problem, detail: `${error.problem.detail ?? "a one-time code is required"}; give --otp CODE` });
    const prompt = createInterface({ input: process.stdin, output: process.stderr });
    try {
      client.setOneTimeCode((await prompt.question("one-time code: ")).trim());
    } finally {
      prompt.close();
    }
    return run();
  }
}
