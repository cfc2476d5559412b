import { Redis } from "ioredis";
import t from "tap";
import { startGateway } from "../helpers/gateway.js";
import { startOwnRedis } from "../helpers/redis-server.js";

t.test("finding 6: Redis that stops answering gets an honest 503, and re-sending the same bytes delivers each message exactly once", { timeout: 120_000 }, async (t) => {
  const redis = await startOwnRedis();
  t.teardown(() => redis.destroy());
  const gw = await startGateway({ redis: { url: redis.url, commandTimeoutSeconds: 1 }, tls: { handshakesPerSecondPerAddress: 0 } });
  t.teardown(() => gw.stop());
  const client = await gw.client("demo-client", { connections: 32 });
  t.equal((await client.send("/v1/messages/warm", "{}")).status, 202);

  const messages = Array.from({ length: 32 }, (_, i) => client.prepare("/v1/messages/frozen", JSON.stringify({ i })));
  redis.signal("SIGSTOP");
  const answers = await Promise.all(messages.map((m) => client.dispatch(m)));
  const thaw = setTimeout(() => redis.signal("SIGCONT"), 3000);
  t.teardown(() => clearTimeout(thaw));
  const codes = answers.map((a) => `${a.status} ${(a.body as { code?: string }).code}`);
  t.same([...new Set(codes)], ["503 replay-store-timeout"], "every answer says the outcome is unknown, none claims nothing was forwarded");
  t.ok(answers.every((a) => a.headers["retry-after"] !== undefined), "with Retry-After");

  await new Promise((resolve) => setTimeout(resolve, 4000));
  const ids: string[] = [];
  const unclear: string[] = [];
  for (const message of messages) {
    const again = await client.dispatch(message);
    const body = again.body as { id?: string; messageId?: string; code?: string };
    if (!(again.status === 202 || (again.status === 409 && body.messageId))) unclear.push(`${again.status} ${body.code}`);
    ids.push(String(body.id ?? body.messageId));
  }
  t.same(unclear, [], "the same bytes again: 202, or 409 naming the accepted original");
  const reader = new Redis(redis.url);
  t.teardown(() => reader.quit());
  const entries = await reader.xrange("postern:{messages}:messages", "-", "+");
  const stored = entries.map(([, fields]) => fields[fields.indexOf("message-id") + 1]).filter((id) => id !== undefined);
  const frozen = stored.filter((id) => ids.includes(id!));
  t.equal(frozen.length, 32, "each of the 32 messages is in the stream");
  t.equal(new Set(frozen).size, 32, "exactly once each");

  // The client library does the same by itself.
  redis.signal("SIGSTOP");
  const thawAgain = setTimeout(() => redis.signal("SIGCONT"), 2500);
  t.teardown(() => clearTimeout(thawAgain));
  const retrying = await gw.client("demo-client", { attempts: 6 });
  const results = await Promise.all(Array.from({ length: 8 }, (_, i) => retrying.send("/v1/messages/frozen-sdk", JSON.stringify({ i }))));
  t.ok(results.every((r) => r.status === 202), "the SDK retried the same bytes until it knew");
  const after = await reader.xrange("postern:{messages}:messages", "-", "+");
  const sdkIds = after.map(([, fields]) => fields[fields.indexOf("message-id") + 1]).filter((id) => results.some((r) => r.id === id));
  t.equal(sdkIds.length, 8, "one entry per message");
  t.equal(new Set(sdkIds).size, 8);
});
