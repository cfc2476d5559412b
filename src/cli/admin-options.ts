import { readFile } from "node:fs/promises";
import { AdminClient } from "../client/index.js";

/** Options every admin command takes, with defaults that work next to `npm start`. */
export const ADMIN_OPTIONS = {
  "admin-url": { type: "string", default: process.env.POSTERN_ADMIN_URL ?? "https://127.0.0.1:8444" },
  cert: { type: "string", default: "certs/admin.crt" },
  key: { type: "string", default: "certs/admin.key" },
  ca: { type: "string", default: "certs/ca-bundle.pem" },
} as const;

export const ADMIN_USAGE = `  --admin-url URL      admin API (default https://127.0.0.1:8444, or POSTERN_ADMIN_URL)
  --cert FILE          admin certificate chain (default certs/admin.crt)
  --key FILE           admin key (default certs/admin.key)
  --ca FILE            CA bundle (default certs/ca-bundle.pem)`;

export async function adminClient(values: { "admin-url": string; cert: string; key: string; ca: string }): Promise<AdminClient> {
  return new AdminClient({
    url: values["admin-url"],
    cert: await readFile(values.cert),
    key: await readFile(values.key),
    ca: await readFile(values.ca),
  });
}
