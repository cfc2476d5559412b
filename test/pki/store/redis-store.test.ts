import t from "tap";
import { RedisStore } from "../../../src/pki/store/redis-store.js";
import { connectTestRedis, deleteKeysWithPrefix, uniqueTestPrefix } from "../../helpers/redis.js";
import { certRecord, runStoreContract } from "./store-contract.js";

const redis = await connectTestRedis();
const prefixes: string[] = [];
t.teardown(async () => {
  for (const p of prefixes) await deleteKeysWithPrefix(redis, p);
  await redis.quit();
});

runStoreContract(t, async () => {
  const keyPrefix = uniqueTestPrefix();
  prefixes.push(keyPrefix);
  const harness = {
    store: new RedisStore({ redis, keyPrefix }),
    reopen: async () => {
      await harness.store.close();
      return new RedisStore({ redis, keyPrefix });
    },
  };
  return harness;
});

t.test("keyPrefix must carry exactly one hash tag (Redis Cluster slot)", async (t) => {
  t.throws(() => new RedisStore({ redis, keyPrefix: "postern:pki:" }), RangeError);
  t.throws(() => new RedisStore({ redis, keyPrefix: "postern:{a}:{b}:" }), RangeError);
  t.throws(() => new RedisStore({ redis, keyPrefix: "postern:{}:" }), RangeError);
});

t.test("a revocation from another replica reaches subscribers", async (t) => {
  const keyPrefix = uniqueTestPrefix();
  prefixes.push(keyPrefix);
  const a = new RedisStore({ redis, keyPrefix });
  const b = new RedisStore({ redis, keyPrefix });
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const seen: string[] = [];
  await a.subscribeRevocations((e) => seen.push(e.serial));
  await b.putCertificate(certRecord("0f01"));
  await b.revoke("0f01", "keyCompromise", 1);
  const until = Date.now() + 5000;
  while (seen.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  t.same(seen, ["0f01"]);
  t.ok((await deleteKeysWithPrefix(redis, keyPrefix)) > 0);
});
