/**
 * The bench's baseline: the least an mTLS HTTP server in Node can do per message. It asks for and
 * verifies a client certificate (Node/OpenSSL's chain check), reads the body and answers 202 with
 * a small JSON body. No signature, replay or storage work. Standalone (node builtins only): the
 * bench compiles it to plain JavaScript and runs it with `node`, as Postern runs from dist/.
 * Settings come from BARE_KEY, BARE_CERT, BARE_CA (file paths) and BARE_CIPHERS.
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:https";

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const server = createServer(
  {
    key: readFileSync(env("BARE_KEY")),
    cert: readFileSync(env("BARE_CERT")),
    ca: readFileSync(env("BARE_CA")),
    requestCert: true,
    rejectUnauthorized: true,
    ciphers: env("BARE_CIPHERS"),
    honorCipherOrder: true,
    ALPNProtocols: ["http/1.1"],
    keepAliveTimeout: 300_000,
    headersTimeout: 60_000,
    requestTimeout: 120_000,
  },
  (req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(202, { "content-type": "application/json" });
      res.end('{"id":"bare"}');
    });
  },
);
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`);
});
process.once("SIGTERM", () => {
  server.close();
  server.closeAllConnections();
});
