import t from "tap";
import { startGateway } from "../helpers/gateway.js";

t.test("a route's signature policy overrides the global one", async (t) => {
  const allow = { roles: ["client"] };
  const gw = await startGateway({
    routes: [
      { name: "strict", path: "/v1/strict/:id", backend: "messages", allow, signature: { maxAgeSeconds: 10, clockSkewSeconds: 0 } },
      { name: "traced", path: "/v1/traced/:id", backend: "messages", allow, signature: { additionalComponents: ["x-request-id"] } },
      { name: "default", path: "/v1/default/:id", backend: "messages", allow },
    ],
  });
  t.teardown(() => gw.stop());
  const twentySecondsAgo = await gw.client("demo-client", { now: () => Date.now() - 20_000 });
  await t.rejects(twentySecondsAgo.send("/v1/strict/1", "{}"), { code: "stale" }, "too old for the strict route");
  t.equal((await twentySecondsAgo.send("/v1/default/1", "{}")).status, 202, "fine for the default window");

  const client = await gw.client();
  await t.rejects(client.send("/v1/traced/1", "{}"), { code: "signature-profile" }, "x-request-id must be covered");
  t.equal((await client.send("/v1/default/2", "{}")).status, 202);
});
