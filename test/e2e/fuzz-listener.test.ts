import fc from "fast-check";
import t from "tap";
import { startGatewayProcess } from "../helpers/gateway-process.js";
import { openTls, readAnswer, tlsMaterial } from "../helpers/raw-tls.js";
import { signRawRequest } from "../helpers/signed-raw.js";

// The file's time, as long as its tests may take together (.taprc's 120 s would cut them short).
t.setTimeout(600_000);

const chunk = fc.oneof(
  fc.string({ unit: "grapheme-ascii", maxLength: 300 }).map((data) => `${Buffer.byteLength(data).toString(16)}\r\n${data}\r\n`),
  fc.constantFrom("0\r\n\r\n", "zz\r\n", "ffffffffffffffff\r\nab\r\n", "5;ext=1\r\nabcde\r\n", "3\r\nabcdef\r\n", "\r\n", "-1\r\n", "1\r\n\n\r\n", "0\r\nx-trailer: 1\r\n\r\n"),
  fc.nat(2_000_000).map((n) => `${n.toString(16)}\r\n`),
);

const request = fc.record({
  method: fc.constantFrom("POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW", "post", ""),
  target: fc.constantFrom("/v1/messages/x", "/v1/messages/", "/", "*", "/v1/messages/x?a=b", "//..%2f", "/v1/messages/" + "a".repeat(3000), "http://evil/v1/messages/x"),
  host: fc.constantFrom<string[]>(["localhost"], [], ["a", "b"], [""], ["localhost:1"]),
  contentType: fc.constantFrom<string[]>(["application/json"], [], ["application/json", "text/plain"], ["multipart/form-data; boundary=x"]),
  length: fc.oneof(fc.constant(undefined), fc.nat(3_000_000).map(String), fc.constantFrom("-1", "abc", "1, 2", " 5 ")),
  chunked: fc.constantFrom(undefined, "chunked", "gzip, chunked", "chunked, gzip", "identity", "Chunked"),
  chunks: fc.array(chunk, { maxLength: 6 }),
  raw: fc.string({ unit: "binary", maxLength: 200 }),
  cutAt: fc.option(fc.nat(2000)),
  splitAt: fc.nat(64),
});

t.test("malformed requests, chunking and resets never crash the listener or get a 500", { timeout: 600_000 }, async (t) => {
  const gw = await startGatewayProcess(t, { configYaml: "limits:\n  headersTimeoutSeconds: 2\n  requestTimeoutSeconds: 3\n" });
  const material = await tlsMaterial(gw.certs);
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(request, async (r) => {
      const lines = [`${r.method} ${r.target} HTTP/1.1`];
      for (const h of r.host) lines.push(`host: ${h}`);
      for (const c of r.contentType) lines.push(`content-type: ${c}`);
      if (r.length !== undefined) lines.push(`content-length: ${r.length}`);
      if (r.chunked !== undefined) lines.push(`transfer-encoding: ${r.chunked}`);
      let bytes = Buffer.from(`${lines.join("\r\n")}\r\n\r\n${r.chunks.join("")}${r.raw}`, "latin1");
      if (r.cutAt !== null) bytes = bytes.subarray(0, r.cutAt);
      const socket = await openTls(gw.dataPort, material);
      socket.on("error", () => undefined);
      socket.write(bytes.subarray(0, r.splitAt));
      socket.write(bytes.subarray(r.splitAt));
      if (r.cutAt !== null && r.cutAt % 3 === 0) {
        socket.destroy(); // a reset mid-request
        return true;
      }
      const answer = await readAnswer(socket, undefined, 400);
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      return answer.status < 500 && gw.child.exitCode === null;
    }),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 150) },
  );
  t.comment(`statuses seen: ${JSON.stringify([...statuses].sort())}`);
  t.equal(gw.child.exitCode, null, "the gateway process is still running");
  t.equal((await fetch(`http://127.0.0.1:${gw.publicPort}/healthz`)).status, 200);
  const metrics = await (await fetch(`http://127.0.0.1:${gw.publicPort}/metrics`)).text();
  t.notMatch(metrics, /postern_requests_total\{[^}]*status="500"/, "no 500 counted");
  t.match(metrics, /postern_uncaught_errors_total 0/, "no uncaught error");
  const good = signRawRequest(material, { authority: `localhost:${gw.dataPort}`, path: "/v1/messages/after-fuzz", body: "{}" });
  const socket = await openTls(gw.dataPort, material);
  t.equal((await readAnswer(socket, good.text(), 5000)).status, 202, "and a signed message still gets 202");
});
