import { readFile, writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { embeddedStreamFiles, loadBackendPrivateKeys, loadJwks, openSealedEntry, readEmbeddedEntries, readStreamEntry, verifyStreamEntry, type StreamEntryFields } from "../consumer/index.js";
import { PosternError } from "../errors.js";
import { JSON_USAGE, printJson, UsageError } from "./usage.js";

export const usage = `postern verify --jwks URL|FILE (--entry FILE [--id ID] | --redis URL --stream KEY --id ID) [--decrypt --key DIR|FILE [--out FILE]] [--json]
  --jwks URL|FILE   the gateway's JWKS (e.g. http://127.0.0.1:9464/.well-known/postern-keys)
  --entry FILE      a JSON entry, or a JSON-lines file of the embedded backend (data/<backend>.jsonl);
                    with --id, the entry with that id (also found in the file's rotated files,
                    FILE.000001, ...), else the last one
  --redis URL       read the entry from a Redis Stream ...
  --stream KEY      ... with this key (e.g. 'postern:{messages}:messages')
  --id ID           the entry id
  --max-age-seconds N  how old an entry may be (default 604800: 7 days)
  --decrypt         then open the sealed body: decrypt it and check it was sealed for this route
                    (method and path) by the client whose certificate the gateway recorded
  --key DIR|FILE    with --decrypt: the backend's key ring (postern keys backend create --dir) or one PEM key
  --out FILE        with --decrypt: write the plaintext here (0600) instead of after the OK lines
${JSON_USAGE}: {ok: true, messageId, identity, bytes, contentType, clientCertSha256}
                       or {ok: false, code, detail}
Exit 0 when the entry verifies (and, with --decrypt, opens), 1 when it does not.`;

export async function runVerify(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      jwks: { type: "string" },
      entry: { type: "string" },
      redis: { type: "string" },
      stream: { type: "string" },
      id: { type: "string" },
      "max-age-seconds": { type: "string", default: String(7 * 86_400) },
      json: { type: "boolean", default: false },
      decrypt: { type: "boolean", default: false },
      key: { type: "string" },
      out: { type: "string" },
    },
    strict: true,
  });
  if (!values.jwks) throw new UsageError("--jwks is required");
  if (values.decrypt && !values.key) throw new UsageError("--decrypt needs --key DIR|FILE (the backend's private keys)");
  if (!values.decrypt && (values.key !== undefined || values.out !== undefined)) throw new UsageError("--key and --out apply with --decrypt only");
  const privateKeys = values.decrypt ? await loadBackendPrivateKeys(values.key!) : undefined;
  const maxAgeSeconds = Number(values["max-age-seconds"]);
  if (!Number.isInteger(maxAgeSeconds) || maxAgeSeconds <= 0) throw new UsageError("--max-age-seconds must be a positive integer");
  const fields = await loadEntry(values);
  if (!fields && values.json) {
    printJson({ ok: false, code: "not-found", detail: "no such entry" });
    return 1;
  }
  if (!fields) {
    process.stderr.write("postern verify: no such entry\n");
    return 1;
  }
  const keys = await loadJwks(values.jwks);
  const result = verifyStreamEntry(fields, { keys, maxAgeSeconds });
  if (values.json) {
    printJson(
      result.ok
        ? { ok: true, messageId: result.messageId, identity: result.identity, bytes: result.body.byteLength, contentType: result.contentType, clientCertSha256: result.clientCertSha256 }
        : { ok: false, code: result.code, detail: result.detail },
    );
    return result.ok ? 0 : 1;
  }
  if (!result.ok) {
    process.stdout.write(`FAILED ${result.code}: ${result.detail}\n`);
    return 1;
  }
  process.stdout.write(`OK message ${result.messageId} from ${result.identity} (${result.body.byteLength} bytes, ${result.contentType})\n`);
  if (!privateKeys) return 0;
  const opened = await openSealedEntry(result, privateKeys);
  if (!opened.ok) {
    process.stdout.write(`FAILED ${opened.code}: ${opened.detail}\n`);
    return 1;
  }
  process.stdout.write(`OPENED sealed to key ${opened.kid} (${opened.alg}, ${opened.plaintext.byteLength} bytes${opened.contentType ? `, ${opened.contentType}` : ""})\n`);
  if (values.out) await writeFile(values.out, opened.plaintext, { mode: 0o600 });
  else process.stdout.write(opened.plaintext);
  return 0;
}

async function loadEntry(values: { entry?: string; redis?: string; stream?: string; id?: string }): Promise<StreamEntryFields | undefined> {
  if (values.entry) {
    // Just rotated, the file itself may not exist yet: its rotated files may hold the entry.
    const text = await readFile(values.entry, "utf8").catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return "";
      throw error;
    });
    const lines = text.split("\n").filter((l) => l.trim() !== "");
    const entries = lines.map((line, i) => {
      try {
        return JSON.parse(line) as { id?: string; bodyEncoding?: string; fields?: Record<string, string> };
      } catch {
        throw new UsageError(`${values.entry}:${i + 1} is not JSON`);
      }
    });
    const entry = values.id ? entries.find((e) => e.id === values.id) : entries.at(-1);
    if (!entry?.fields) return findRotated(values.entry, values.id);
    const fields: Record<string, string | Buffer> = { ...entry.fields };
    if (entry.bodyEncoding === "base64" && typeof entry.fields.body === "string") fields.body = Buffer.from(entry.fields.body, "base64");
    return fields;
  }
  if (values.redis && values.stream && values.id) return readStreamEntry(values.redis, values.stream, values.id);
  throw new UsageError("give --entry FILE, or --redis, --stream and --id");
}

/** The entry `id` (or the last one) among the embedded file's rotated files and itself. */
async function findRotated(path: string, id: string | undefined): Promise<StreamEntryFields | undefined> {
  if ((await embeddedStreamFiles(path)).length === 0) throw new PosternError("not-found", `no entry file at ${path} (nor rotated ones, ${path}.000001, ...)`);
  let found: StreamEntryFields | undefined;
  try {
    for await (const entry of readEmbeddedEntries(path)) {
      if (id === undefined) found = entry.fields;
      else if (entry.id === id) return entry.fields;
    }
  } catch (error) {
    if (error instanceof SyntaxError) throw new UsageError(error.message);
    throw error;
  }
  return found;
}
