import fc from "fast-check";
import t from "tap";
import { isErrorCode } from "../../src/errors.js";
import { startGateway } from "../helpers/gateway.js";

const printable = fc.string({ unit: "grapheme-ascii", maxLength: 300 });
const hostileValue = fc.oneof(
  printable,
  fc.string({ unit: "binary", maxLength: 200 }).map((s) => s.replace(/[\r\n\0]/g, "")),
  fc.constantFrom("", " ", ":", "sig1=", "sig1=()", 'sig1=("@method");created=1e99', "sig1=:!!:", "sha-256=:AAAA:", "sha-256=:", '("', ";;;;"),
  fc.nat(20_000).map((n) => "a".repeat(n)),
);

t.test("hostile signature, digest and content-type headers never crash the gateway or get a 500", async (t) => {
  // Refusals close connections; the per-address handshake limit is not what this test is about.
  const gw = await startGateway({ tls: { handshakesPerSecondPerAddress: 0 } });
  t.teardown(() => gw.stop());
  let client = await gw.client();
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        target: fc.constantFrom("signature-input", "signature", "content-digest", "content-type"),
        value: hostileValue,
        duplicate: fc.boolean(),
      }),
      async ({ target, value, duplicate }) => {
        const message = client.prepare("/v1/messages/fuzz", '{"fuzz":true}');
        const headers: Record<string, string | string[]> = { ...message.headers };
        // Bytes as they would arrive on the wire; CR, LF and NUL would end or corrupt the header
        // line itself (undici does not always refuse them), which is the HTTP parser's business.
        const latin1 = Buffer.from(value, "latin1").toString("latin1").replace(/[\r\n\0]/g, "");
        headers[target] = duplicate ? [String(headers[target] ?? ""), latin1] : latin1;
        let answer;
        try {
          answer = await Promise.race([
            client.dispatch({ ...message, headers: headers as Record<string, string> }),
            new Promise<never>((_, reject) => setTimeout(() => reject(new Error("HANG")), 5000).unref()),
          ]);
        } catch (error) {
          if ((error as Error).message === "HANG") return false; // no answer within 5 s
          // undici refused to send it (invalid header characters): nothing reached the gateway. A
          // fresh client, because undici 7 can leave its queue stuck after such a refusal.
          client = await gw.client();
          return true;
        }
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        if (answer.status === 202) return true; // e.g. a duplicate content-type line equal to the first
        const body = answer.body as { code?: unknown };
        const ok = answer.status >= 400 && answer.status < 500 && isErrorCode(body.code);
        return ok;
      },
    ),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 300) },
  );
  t.notOk(statuses.has(500), `no 500 among ${JSON.stringify([...statuses])}`);
  const health = await fetch(`${gw.publicUrl}/healthz`);
  t.equal(health.status, 200, "still healthy");
});
