import t from "tap";
import { demoClient, startReplicaPair } from "../helpers/replica.js";

t.test("one identity above its limit through two replicas gets 429s at the combined configured rate", async (t) => {
  const rate = 20;
  const burst = 10;
  const routes = [
    "routes:",
    "  - name: messages",
    "    path: /v1/messages/:topic",
    "    backend: messages",
    "    allow: { roles: [client] }",
    `    rateLimit: { requestsPerSecond: ${rate}, burst: ${burst} }`,
    "",
  ].join("\n");
  const { certs, first, second } = await startReplicaPair(t, routes);
  const clients = [await demoClient(certs, first.port), await demoClient(certs, second.port)];
  t.teardown(() => Promise.all(clients.map((c) => c.close())).then(() => undefined));

  const durationMs = 2000;
  const started = Date.now();
  let accepted = 0;
  let limited = 0;
  let retryAfterSeen = false;
  const other: string[] = [];
  await Promise.all(
    [0, 1, 2, 3].map(async (worker) => {
      const client = clients[worker % 2]!;
      // At least durationMs, and on a slow machine until the limit has been met (bounded).
      while (Date.now() - started < durationMs || (limited === 0 && Date.now() - started < 30_000)) {
        const answer = await client.dispatch(client.prepare("/v1/messages/orders", "{}"));
        if (answer.status === 202) accepted++;
        else if (answer.status === 429) {
          limited++;
          retryAfterSeen ||= Number(answer.headers["retry-after"]) >= 1;
        } else other.push(String(answer.status));
      }
    }),
  );
  const elapsed = (Date.now() - started) / 1000;
  const expected = burst + rate * elapsed;
  t.same(other, [], "only 202s and 429s");
  t.ok(limited > 0, `429s were sent (${limited})`);
  t.ok(retryAfterSeen, "429s carry Retry-After");
  // The limit is what is checked: never more than the combined rate. How far below it the
  // count stays depends on how fast this machine can send, so the floor is only the burst.
  t.ok(
    accepted <= expected * 1.15 + 2 && accepted >= burst,
    `accepted ${accepted} across both replicas, at most about ${expected.toFixed(0)} (burst ${burst} + ${rate}/s x ${elapsed.toFixed(1)} s), at least the burst`,
  );
});
