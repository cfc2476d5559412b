import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { readNamed } from "./files.js";
import { UsageError } from "./usage.js";

export const usage = `postern send [options]
  --url URL            gateway URL with path (default: the configured data listener, /v1/messages/demo)
  --cert FILE          client certificate chain PEM (default <pki.dir>/demo-client.crt)
  --key FILE           client private key PEM (default <pki.dir>/demo-client.key)
  --ca FILE            CA bundle that issued the gateway's certificate (default <pki.dir>/ca-bundle.pem)
  --data TEXT          message body
  --file FILE          read the body from FILE ("-" for standard input)
  --content-type TYPE  default application/json
  --seal BACKEND       seal the body to BACKEND's encryption keys first (end to end: the gateway checks
                       but cannot read it); the keys come from the configured public listener's
                       /.well-known/postern-backend-keys/BACKEND unless --seal-keys says otherwise
  --seal-keys URL|FILE the backend's JWKS (a URL, or a copy of its jwks.json you trust)`;

/** `postern send`: prints the gateway's JSON answer; exit 0 on acceptance, 1 on a refusal. */
export async function runSend(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      url: { type: "string" },
      cert: { type: "string" },
      key: { type: "string" },
      ca: { type: "string" },
      data: { type: "string" },
      file: { type: "string" },
      "content-type": { type: "string", default: "application/json" },
      seal: { type: "string" },
      "seal-keys": { type: "string" },
    },
    strict: true,
  });
  if ((values.data === undefined) === (values.file === undefined)) throw new UsageError("give exactly one of --data or --file");
  if (values["seal-keys"] !== undefined && values.seal === undefined) throw new UsageError("--seal-keys needs --seal BACKEND");
  if (values.seal !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(values.seal)) throw new UsageError("--seal takes a backend's name");
  const body = values.data ?? (values.file === "-" ? await readStdin() : await readFile(values.file!));
  // Imported here, not at the top: `send --help` loads neither undici nor the configuration
  // schema, and with every flag given the configuration is never read.
  const { PosternClient, PosternRequestError } = await import("../client/index.js");
  const missing = values.url === undefined || values.cert === undefined || values.key === undefined || values.ca === undefined
    || (values.seal !== undefined && values["seal-keys"] === undefined);
  const defaults = missing ? (await import("./defaults.js")).cliDefaults() : undefined;
  const inPki = (file: string) => join(defaults!.pkiDir, file);
  const url = new URL(values.url ?? `${defaults!.dataUrl}/v1/messages/demo`);
  const client = new PosternClient({
    url: url.origin,
    cert: await readNamed(values.cert ?? inPki("demo-client.crt"), "client certificate"),
    key: await readNamed(values.key ?? inPki("demo-client.key"), "client key"),
    ca: await readNamed(values.ca ?? inPki("ca-bundle.pem"), "CA bundle"),
  });
  try {
    const seal = values.seal === undefined ? undefined : values["seal-keys"] ?? `${defaults!.publicUrl}/.well-known/postern-backend-keys/${values.seal}`;
    const result = await client.send(url.pathname + url.search, body, values["content-type"], seal === undefined ? {} : { seal });
    process.stdout.write(JSON.stringify({ status: result.status, ...result.body }) + "\n");
    return 0;
  } catch (error) {
    if (error instanceof PosternRequestError) {
      process.stdout.write(JSON.stringify(error.problem) + "\n");
      process.stderr.write(`postern send: refused: ${error.status} ${error.code}\n`);
      return 1;
    }
    throw error;
  } finally {
    await client.close();
  }
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
