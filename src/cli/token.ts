import { parseArgs } from "node:util";
import { ADMIN_OPTIONS, ADMIN_USAGE, adminClient } from "./admin-options.js";
import { parseDurationSeconds } from "./keys.js";
import { UsageError } from "./usage.js";

export const usage = `postern token create --id IDENTITY [--ttl 15m] [--role R]... [--profile P]
  --id IDENTITY        the identity the token enrolls, e.g. spiffe://postern.local/client/orders
  --ttl D              how long the token is valid: 30s, 15m, 12h, 7d (default 15m, at most 7d)
  --role R             roles to grant (repeatable; default the profile's roles)
  --profile P          issuance profile (default the gateway's default profile)
${ADMIN_USAGE}
Prints the token alone on the first line and its expiry on the second:
  TOKEN=$(postern token create --id ... | head -1)
The token is shown once; only its hash is stored. Hand it over like a password.`;

interface CreatedToken {
  token: string;
  expiresAt: string;
}

/** `postern token create`: exit 0 with the token printed, 1 when the admin API refuses. */
export async function runToken(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action !== "create") throw new UsageError(action === undefined ? "give an action: create" : `unknown action ${JSON.stringify(action)}`);
  const { values } = parseArgs({
    args: rest,
    options: {
      ...ADMIN_OPTIONS,
      id: { type: "string" },
      ttl: { type: "string", default: "15m" },
      role: { type: "string", multiple: true },
      profile: { type: "string" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (!values.id) throw new UsageError("--id is required");
  const ttlSeconds = parseDurationSeconds(values.ttl, "--ttl");
  const client = await adminClient(values);
  try {
    const created = (await client.call("POST", "/v1/tokens", {
      identity: values.id,
      ttl: ttlSeconds,
      ...(values.role ? { roles: values.role } : {}),
      ...(values.profile ? { profile: values.profile } : {}),
    })) as CreatedToken;
    process.stdout.write(`${created.token}\nexpires ${created.expiresAt}\n`);
    return 0;
  } finally {
    await client.close();
  }
}
