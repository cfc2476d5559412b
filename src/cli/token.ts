import { parseArgs } from "node:util";
import { PosternRequestError } from "../client/index.js";
import { ADMIN_OPTIONS, ADMIN_USAGE, adminClient, withSecondFactor } from "./admin-options.js";
import { parseDurationSeconds } from "./duration-flag.js";
import { JSON_USAGE, printJson, UsageError } from "./usage.js";

export const usage = `postern token create --id IDENTITY [--ttl 15m] [--role R]... [--profile P] [--json]
  --id IDENTITY        the identity the token enrolls, e.g. spiffe://postern.local/client/orders
  --ttl D              how long the token is valid: 30s, 15m, 12h, 7d (default 15m, at most 7d)
  --role R             roles to grant (repeatable; default the profile's roles)
  --profile P          issuance profile (default the gateway's default profile)
${JSON_USAGE}: {token, expiresAt}
${ADMIN_USAGE}
Prints the token alone on the first line and its expiry on the second:
  TOKEN=$(postern token create --id ... | head -1)
The token is shown once; only its hash is stored. Hand it over like a password. An identity or
role the profile does not allow is refused here (exit 2), not at enrollment. Only a successful
enrollment spends the token; 5 refused attempts delete it.`;


/**
 * `postern token create`: exit 0 with the token printed; 2 when the profile would refuse the
 * identity or roles (the same refusal enrollment would give; nothing is stored); 1 when the
 * admin API refuses for another reason.
 */
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
      json: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (!values.id) throw new UsageError("--id is required");
  const ttlSeconds = parseDurationSeconds(values.ttl, "--ttl");
  const client = await adminClient(values);
  try {
    const created = await withSecondFactor(client, values.otp, () => client.createToken({
      identity: values.id!,
      ttl: ttlSeconds,
      ...(values.role ? { roles: values.role } : {}),
      ...(values.profile ? { profile: values.profile } : {}),
    }));
    if (values.json) printJson({ token: created.token, expiresAt: created.expiresAt });
    else process.stdout.write(`${created.token}\nexpires ${created.expiresAt}\n`);
    return 0;
  } catch (error) {
    if (error instanceof PosternRequestError && error.code === "csr-forbidden-name") {
      process.stderr.write(`postern token: ${error.message}\n`);
      return 2;
    }
    throw error;
  } finally {
    await client.close();
  }
}
