import t from "tap";
import { ConnectionCaps } from "../../src/tls/connection-caps.js";

t.test("caps per key and in total; releasing frees the slot once", async (t) => {
  const caps = new ConnectionCaps(2, 3);
  const a1 = caps.tryOpen("a");
  const a2 = caps.tryOpen("a");
  t.type(a1, "function");
  t.type(a2, "function");
  t.equal(caps.tryOpen("a"), "key_limit");
  const b1 = caps.tryOpen("b");
  t.type(b1, "function");
  t.equal(caps.tryOpen("c"), "total_limit", "the total is checked first");
  (a1 as () => void)();
  (a1 as () => void)();
  t.equal(caps.size, 2, "a second release of the same connection counts nothing");
  t.type(caps.tryOpen("a"), "function");
});

t.test("0 means no limit", async (t) => {
  const caps = new ConnectionCaps(0, 0);
  for (let i = 0; i < 1000; i++) t.type(caps.tryOpen("a"), "function");
  t.equal(caps.size, 1000);
});
