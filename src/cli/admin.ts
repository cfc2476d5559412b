import { parseArgs } from "node:util";
import { toString as qrText } from "qrcode";
import { PASSPHRASE_ENV } from "../config/index.js";
import { AdminSecondFactor, AuditLog, base32, pkiLocations, resolvePassphrase } from "../pki/index.js";
import { cliDefaults } from "./defaults.js";
import { UsageError } from "./usage.js";

export const usage = `postern admin otp enroll --id ADMIN-IDENTITY [--replace] [--no-qr]
postern admin otp list
postern admin otp remove --id ADMIN-IDENTITY
  enroll      make a TOTP secret (RFC 6238: SHA-1, 6 digits, 30 s) for an admin identity and
              show it once: an otpauth:// URI, a QR code for an authenticator app, and the
              base32 secret (oathtool --totp -b SECRET prints the current code)
  --replace   enroll again: the previous secret stops working
  --no-qr     print the URI and the secret without the QR code
  list        the enrolled admin identities
  remove      drop an identity's second factor (with admin.otp.mode on it is then refused)
The secrets live in <pki.stateDir>/admin-otp.json, encrypted (AES-256-GCM) under a key derived
from the CA passphrase (pki.passphraseFile, ${PASSPHRASE_ENV} or <pki.dir>/ca-passphrase).
With admin.otp.mode auto (the default) the first enrollment turns the second factor on for
every admin: issue, revoke and token create then need --otp CODE (or ask for it on a terminal).
A running gateway sees an enrollment at once.`;

/** `postern admin otp enroll|list|remove`: exit 0, 1 when refused (an identity already enrolled, none to remove). */
export async function runAdmin(args: string[]): Promise<number> {
  const [group, action, ...rest] = args;
  if (group !== "otp") throw new UsageError(group === undefined ? "give a group: otp" : `unknown group ${JSON.stringify(group)}`);
  if (action !== "enroll" && action !== "list" && action !== "remove") {
    throw new UsageError(action === undefined ? "give an action: enroll, list or remove" : `unknown action ${JSON.stringify(action)}`);
  }
  const { values } = parseArgs({
    args: rest,
    options: { id: { type: "string" }, replace: { type: "boolean", default: false }, "no-qr": { type: "boolean", default: false } },
    strict: true,
    allowPositionals: false,
  });
  if (action !== "list" && !values.id) throw new UsageError("--id is required");
  if (action !== "enroll" && (values.replace || values["no-qr"])) throw new UsageError("--replace and --no-qr apply to enroll only");
  const { config } = cliDefaults();
  const where = pkiLocations(config);
  const { passphrase } = await resolvePassphrase(where.passphraseSource, false);
  const audit = await AuditLog.open(where.auditPath);
  const factor = new AdminSecondFactor({ path: where.otpPath, passphrase, policy: config.admin.otp, audit });
  try {
    if (action === "list") {
      const admins = await factor.list();
      process.stdout.write(admins.map((a) => `${a.identity}  enrolled ${new Date(a.enrolledAtMs).toISOString()}\n`).join("") || "no admin has enrolled a second factor\n");
      return 0;
    }
    if (action === "remove") {
      await factor.remove(values.id!);
      process.stdout.write(`removed the second factor of ${values.id}\n`);
      return 0;
    }
    const { secret, uri } = await factor.enroll(values.id!, { replace: values.replace });
    const qr = values["no-qr"] ? "" : await qrText(uri, { type: "terminal", small: true });
    process.stdout.write(
      `${uri}\n${qr}secret (base32): ${base32(secret)}\n`
      + `Scan the code or enter the secret in an authenticator app now: it is not shown again.\n`
      + (config.admin.otp.mode === "off" ? "admin.otp.mode is off: codes are not asked for until it is auto or on.\n" : "Admin actions now need a one-time code (--otp, or asked for on a terminal).\n"),
    );
    return 0;
  } finally {
    await audit.close();
  }
}
