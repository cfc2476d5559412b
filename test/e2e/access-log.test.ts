import { readFile } from "node:fs/promises";
import { join } from "node:path";
import t from "tap";
import { PosternClient } from "../../src/client/index.js";
import { startGatewayProcess } from "../helpers/gateway-process.js";
import { openTls, readAnswer, tlsMaterial } from "../helpers/raw-tls.js";

t.test("the access log has one line per request and per refused handshake, with its fields and no secret", async (t) => {
  const gw = await startGatewayProcess(t);
  const material = await tlsMaterial(gw.certs);
  const client = new PosternClient({ url: `https://localhost:${gw.dataPort}`, ...material, attempts: 1 });
  t.teardown(() => client.close());
  const message = client.prepare("/v1/messages/logged", '{"secret":"do-not-log-me"}');
  message.headers["x-request-id"] = "trace-4711";
  const accepted = await client.dispatch(message);
  const replayed = await client.dispatch(message);
  const unsigned = await client.dispatch({ ...message, headers: { ...message.headers, signature: "sig1=:AAAA:" } });
  t.same([accepted.status, replayed.status, unsigned.status], [202, 409, 401]);
  t.equal(accepted.headers["x-request-id"], "trace-4711", "the client's request id is echoed");
  t.match(String(replayed.headers["x-request-id"]), /^trace-4711$/);
  const anonymous = await openTls(gw.dataPort, { ca: material.ca });
  await readAnswer(anonymous, "GET / HTTP/1.1\r\nhost: x\r\n\r\n", 3000);
  await new Promise((resolve) => setTimeout(resolve, 300));

  gw.child.kill("SIGTERM");
  const { stderr } = await gw.done;
  const lines = stderr.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  for (const line of lines) {
    t.ok(typeof line.level === "number" && typeof line.msg === "string" && line.pid && line.hostname && line.time, "pino's fields");
  }
  const requests = lines.filter((l) => l.msg === "request");
  const common = { listener: "data", requestId: "trace-4711", method: "POST", path: "/v1/messages/logged", identity: "spiffe://postern.local/client/demo", route: "messages", remote: "127.0.0.1" };
  t.match(requests[0], { ...common, outcome: "accepted", status: 202, messageId: (accepted.body as { id: string }).id, bytesIn: 26 });
  t.match(requests[1], { ...common, outcome: "replayed", status: 409 });
  t.match(requests[2], { ...common, outcome: "signature-invalid", status: 401 });
  t.type(requests[0]!.latencyMs, "number");
  t.match(lines.find((l) => l.msg === "handshake refused"), { listener: "data", reason: "no_cert", remote: "127.0.0.1" });

  const text = stderr.toLowerCase();
  const key = (await readFile(join(gw.certs, "demo-client.key"), "utf8")).split("\n")[1]!.toLowerCase();
  for (const secret of ["do-not-log-me", message.headers.signature!.toLowerCase(), key, "begin private key"]) {
    t.notOk(text.includes(secret.slice(0, 40)), `no secret in the log (${secret.slice(0, 12)}…)`);
  }
});
