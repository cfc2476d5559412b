import t from "tap";
import { CLAIM_HORIZON_MARGIN_MS, claimHorizonMs } from "../../src/replay/nonce.js";

t.test("the horizon covers the longest claim any policy can make, plus the margin", async (t) => {
  t.equal(claimHorizonMs([{ maxAgeSeconds: 300, clockSkewSeconds: 30 }]), (300 + 60 + 1) * 1000 + CLAIM_HORIZON_MARGIN_MS);
  t.equal(
    claimHorizonMs([
      { maxAgeSeconds: 300, clockSkewSeconds: 30 },
      { maxAgeSeconds: 60, clockSkewSeconds: 0 },
      { maxAgeSeconds: 3600, clockSkewSeconds: 5 },
    ]),
    (3600 + 10 + 1) * 1000 + CLAIM_HORIZON_MARGIN_MS,
    "a route with a longer window sets it",
  );
});

t.test("no claim the pipeline accepts outlives received + horizon", async (t) => {
  // The pipeline accepts `created` in [now - maxAge - skew, now + skew] (seconds) and sets the
  // claim to expire at (created + maxAge + skew + 1) s; a start stops reading at received + horizon.
  for (const policy of [{ maxAgeSeconds: 300, clockSkewSeconds: 30 }, { maxAgeSeconds: 1, clockSkewSeconds: 0 }, { maxAgeSeconds: 86_400, clockSkewSeconds: 600 }]) {
    const horizon = claimHorizonMs([policy]);
    for (const receivedMs of [1_700_000_000_000, 1_700_000_000_999]) {
      const nowSeconds = receivedMs / 1000;
      const latestCreated = Math.floor(nowSeconds + policy.clockSkewSeconds);
      const expiresAtMs = (latestCreated + policy.maxAgeSeconds + policy.clockSkewSeconds + 1) * 1000;
      t.ok(expiresAtMs <= receivedMs + horizon - CLAIM_HORIZON_MARGIN_MS, `${JSON.stringify(policy)} at ${receivedMs}`);
    }
  }
});
