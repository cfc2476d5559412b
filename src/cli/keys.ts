import { parseArgs } from "node:util";
import { PASSPHRASE_ENV, stateLocations } from "../config/index.js";
import { caExists, resolvePassphrase, DEFAULT_OVERLAP_SECONDS, SigningKeyRing, type RingKeyEntry } from "../pki/index.js";
import { PosternError } from "../errors.js";
import { cliDefaults } from "./defaults.js";
import { parseDurationSeconds } from "./duration-flag.js";
import { JSON_USAGE, printJson, UsageError } from "./usage.js";

export const usage = `postern keys rotate [--pki-dir DIR] [--overlap DURATION] [--json]
postern keys list [--pki-dir DIR] [--json]
postern keys backend create BACKEND [--dir DIR] [--alg ALG] [--curve CURVE]
postern keys backend rotate BACKEND [--dir DIR] [--overlap DURATION]
postern keys backend list BACKEND [--dir DIR]
  rotate            make a new key active; the old one stays published for the overlap
  list              show every key of the ring: active, published until, or expired
  --pki-dir DIR     the PKI directory (default pki.dir from the configuration: POSTERN_PKI_DIR, else certs)
The ring is pki.signingKeysDir (POSTERN_PKI_SIGNING_KEYS_DIR) when configured, else <pki-dir>/signing-keys.
  --overlap D       how long the retired key stays in the JWKS: 30s, 15m, 12h, 7d (default 7d);
                    keep it at least as long as consumers take to verify what it signed
The CA passphrase comes from pki.passphraseFile, ${PASSPHRASE_ENV} or <pki-dir>/ca-passphrase.
Running gateways pick a rotation up on SIGHUP or within a minute.
${JSON_USAGE}:
                       list {activeKid, keys: [{kid, status, createdAt, publishUntil}]}, status active|published|expired;
                       rotate {activeKid, retiredKid, retiredPublishUntil, prunedKids}

keys backend: a backend's encryption keys for sealed payloads, written on the consumer's side:
the private keys (PKCS#8 PEM, 0600) never go to the gateway. Copy DIR/jwks.json (public keys
only) to the gateway and name it in backends.<BACKEND>.sealing.publicKeys.
  create            a ring with one active key
  rotate            a new active key; the old one stays current (published, accepted) for the overlap
  list              every key: active, current until, or expired
  --dir DIR         the ring's directory (default backend-keys/BACKEND); refused inside pki.dir or data.dir
  --alg ALG         ECDH-ES+A256KW | ECDH-ES (default ECDH-ES+A256KW), always with A256GCM
  --curve CURVE     X25519 | P-256 (default X25519)
  --overlap D       how long the retired key stays current: 30s, 15m, 12h, 7d (default 7d)`;

export async function runKeys(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action === "backend") {
    const { runKeysBackend } = await import("./keys-backend.js");
    return runKeysBackend(rest);
  }
  if (action !== "rotate" && action !== "list") {
    throw new UsageError(action === undefined ? "give an action: rotate, list or backend" : `unknown action ${JSON.stringify(action)}`);
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      "pki-dir": { type: "string" },
      overlap: { type: "string" },
      json: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (action === "list" && values.overlap !== undefined) throw new UsageError("--overlap applies to rotate only");
  const { config } = cliDefaults();
  const pkiDir = values["pki-dir"] ?? config.pki.dir;
  const overlapSeconds = values.overlap === undefined ? DEFAULT_OVERLAP_SECONDS : parseDurationSeconds(values.overlap, "--overlap");
  const ringDir = stateLocations({ ...config, pki: { ...config.pki, dir: pkiDir } }).signingKeysDir;
  const ring = await openRing(pkiDir, ringDir, config.pki.passphraseFile);
  if (action === "list" && values.json) {
    printJson(ringJson(ring.entries(), ring.active().keyid, Date.now()));
    return 0;
  }
  if (action === "list") {
    process.stdout.write(describeRing(ring.entries(), ring.active().keyid, Date.now()));
    return 0;
  }
  const result = await ring.rotate({ overlapSeconds });
  if (values.json) {
    printJson({
      activeKid: result.activeKid,
      retiredKid: result.retiredKid,
      retiredPublishUntil: new Date(result.retiredPublishUntilMs).toISOString(),
      prunedKids: result.prunedKids,
    });
    return 0;
  }
  process.stdout.write(
    `new active key ${result.activeKid}\n`
    + `retired ${result.retiredKid}, published until ${new Date(result.retiredPublishUntilMs).toISOString()}\n`
    + result.prunedKids.map((kid) => `pruned ${kid} (its overlap had passed)\n`).join("")
    + "Running gateways pick the new key up on SIGHUP or within a minute.\n",
  );
  return 0;
}

async function openRing(pkiDir: string, dir: string, passphraseFile: string | undefined): Promise<SigningKeyRing> {
  if (!(await caExists(pkiDir))) throw new PosternError("not-found", `no CA in ${pkiDir}; run postern init (or start) first`);
  const { passphrase } = await resolvePassphrase({ dir: pkiDir, ...(passphraseFile !== undefined ? { passphraseFile } : {}) }, false);
  return SigningKeyRing.open({ pkiDir, dir, passphrase });
}

/** The ring as `keys list --json` prints it. */
function ringJson(entries: readonly RingKeyEntry[], activeKid: string, nowMs: number) {
  const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
  return {
    activeKid,
    keys: entries.map((e) => ({
      kid: e.kid,
      status: e.kid === activeKid ? "active" : (e.publishUntilMs ?? 0) > nowMs ? "published" : "expired",
      createdAt: iso(e.createdAtMs),
      publishUntil: e.kid === activeKid ? null : iso(e.publishUntilMs ?? 0),
    })),
  };
}

/** One line per key: kid, status, created. */
function describeRing(entries: readonly RingKeyEntry[], activeKid: string, nowMs: number): string {
  const iso = (ms: number) => new Date(ms).toISOString();
  const lines = entries.map((e) => {
    const status = e.kid === activeKid
      ? "active"
      : (e.publishUntilMs ?? 0) > nowMs
        ? `published until ${iso(e.publishUntilMs ?? 0)}`
        : `expired ${iso(e.publishUntilMs ?? 0)} (pruned at the next rotation)`;
    return `${e.kid}  ${status.padEnd(44)}  ${iso(e.createdAtMs)}\n`;
  });
  return `${"KID".padEnd(43)}  ${"STATUS".padEnd(44)}  CREATED\n${lines.join("")}`;
}
