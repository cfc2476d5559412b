/**
 * readBody over a real socket: a whole body, one past the limit (declared or growing), a client
 * that hangs up mid-body, and a request that closed before its body was asked for.
 */
import { createServer, type IncomingMessage } from "node:http";
import { connect, type AddressInfo } from "node:net";
import t, { type Test } from "tap";
import { readBody } from "../../src/http/body.js";
import { PosternError } from "../../src/errors.js";

/** A server whose handler hands each request to `onRequest`, and a raw-socket client. */
async function serve(t: Test, onRequest: (req: IncomingMessage) => void): Promise<(bytes: string, hangUp?: boolean) => Promise<void>> {
  const server = createServer((req, res) => {
    onRequest(req);
    res.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));
  const { port } = server.address() as AddressInfo;
  return (bytes, hangUp = false) =>
    new Promise<void>((resolve) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.write(bytes);
        if (hangUp) setTimeout(() => socket.destroy(), 50);
      });
      socket.on("error", () => undefined);
      socket.on("close", () => resolve());
      if (!hangUp) setTimeout(() => socket.destroy(), 500);
    });
}

function outcome(read: Promise<Buffer>): Promise<string> {
  return read.then(
    (body) => `body ${body.toString()}`,
    (error: unknown) => (error instanceof PosternError ? error.code : `other ${String(error)}`),
  );
}

/**
 * Sends `bytes` to a server whose handler reads the body with `limit` (once the request's socket
 * closed, with `afterClose`) and tells how the read ended.
 */
async function readOutcome(t: Test, bytes: string, options: { limit: number; hangUp?: boolean; afterClose?: boolean }): Promise<string | undefined> {
  let result: Promise<string> | undefined;
  const send = await serve(t, (req) => {
    const read = () => (result = outcome(readBody(req, options.limit)));
    if (options.afterClose) req.socket.once("close", () => setImmediate(read));
    else read();
  });
  await send(bytes, options.hangUp);
  return new Promise((resolve) => setTimeout(() => resolve(result), 200));
}

t.test("reads a body sent in several chunks", async (t) => {
  t.equal(await readOutcome(t, "POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n", { limit: 100 }), "body abcdefg");
});

t.test("refuses a declared length over the limit before reading", async (t) => {
  t.equal(await readOutcome(t, "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello", { limit: 4 }), "body-too-large");
});

t.test("refuses a chunked body as soon as it grows past the limit", async (t) => {
  t.equal(await readOutcome(t, "POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n", { limit: 4 }), "body-too-large");
});

t.test("a client that hangs up mid-body is client-closed", async (t) => {
  t.equal(await readOutcome(t, "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nabc", { limit: 100, hangUp: true }), "client-closed");
});

t.test("a request that closed before its body was asked for is client-closed, not a wait forever", async (t) => {
  t.equal(await readOutcome(t, "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nabc", { limit: 100, hangUp: true, afterClose: true }), "client-closed");
});
