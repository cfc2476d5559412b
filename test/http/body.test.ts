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

t.test("reads a body sent in several chunks", async (t) => {
  let result: Promise<string> | undefined;
  const send = await serve(t, (req) => (result = outcome(readBody(req, 100))));
  const sent = send("POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n");
  await t.resolveMatch(new Promise((resolve) => setTimeout(() => resolve(result), 200)), "body abcdefg");
  await sent;
});

t.test("refuses a declared length over the limit before reading", async (t) => {
  let result: Promise<string> | undefined;
  const send = await serve(t, (req) => (result = outcome(readBody(req, 4))));
  const sent = send("POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello");
  await t.resolveMatch(new Promise((resolve) => setTimeout(() => resolve(result), 200)), "body-too-large");
  await sent;
});

t.test("refuses a chunked body as soon as it grows past the limit", async (t) => {
  let result: Promise<string> | undefined;
  const send = await serve(t, (req) => (result = outcome(readBody(req, 4))));
  const sent = send("POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n");
  await t.resolveMatch(new Promise((resolve) => setTimeout(() => resolve(result), 200)), "body-too-large");
  await sent;
});

t.test("a client that hangs up mid-body is client-closed", async (t) => {
  let result: Promise<string> | undefined;
  const send = await serve(t, (req) => (result = outcome(readBody(req, 100))));
  await send("POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nabc", true);
  await t.resolveMatch(new Promise((resolve) => setTimeout(() => resolve(result), 200)), "client-closed");
});

t.test("a request that closed before its body was asked for is client-closed, not a wait forever", async (t) => {
  let result: Promise<string> | undefined;
  const send = await serve(t, (req) => {
    req.socket.once("close", () => setImmediate(() => (result = outcome(readBody(req, 100)))));
  });
  await send("POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nabc", true);
  await t.resolveMatch(new Promise((resolve) => setTimeout(() => resolve(result), 200)), "client-closed");
});
