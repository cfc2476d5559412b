import t from "tap";
import { CircuitBreaker, type BreakerDecision, type BreakerPermit, type BreakerState } from "../../src/forward/circuit-breaker.js";

function setup(failureThreshold = 3, openSeconds = 10) {
  let nowMs = 1_000_000;
  const changes: BreakerState[] = [];
  const breaker = new CircuitBreaker({ failureThreshold, openSeconds, now: () => nowMs, onStateChange: (s) => changes.push(s) });
  return {
    breaker,
    changes,
    advance: (ms: number) => (nowMs += ms),
    permit(): BreakerPermit {
      const decision = breaker.tryAcquire();
      if (!decision.allowed) throw new Error("expected a permit");
      return decision.permit;
    },
  };
}

function rejected(decision: BreakerDecision): number | undefined {
  return decision.allowed ? undefined : decision.retryAfterSeconds;
}

t.test("closed: failures below the threshold keep it closed; a success resets the count", async (t) => {
  const b = setup(3);
  b.permit().fail();
  b.permit().fail();
  b.permit().succeed();
  b.permit().fail();
  b.permit().fail();
  t.equal(b.breaker.state, "closed");
  t.same(b.changes, []);
});

t.test("opens after failureThreshold consecutive failures and refuses with the remaining open time", async (t) => {
  const b = setup(3, 10);
  for (let i = 0; i < 3; i++) b.permit().fail();
  t.equal(b.breaker.state, "open");
  t.same(b.changes, ["open"]);
  t.equal(rejected(b.breaker.tryAcquire()), 10);
  b.advance(7_500);
  t.equal(rejected(b.breaker.tryAcquire()), 2.5);
  t.equal(b.breaker.retryAfterSeconds(), 2.5);
});

t.test("half-open lets exactly one trial through; its success closes the breaker", async (t) => {
  const b = setup(1, 5);
  b.permit().fail();
  b.advance(5_000);
  const trial = b.permit();
  t.equal(b.breaker.state, "half-open");
  t.equal(rejected(b.breaker.tryAcquire()), 1, "a second caller is refused while the trial runs");
  t.equal(rejected(b.breaker.tryAcquire()), 1);
  trial.succeed();
  t.equal(b.breaker.state, "closed");
  t.same(b.changes, ["open", "half-open", "closed"]);
  t.ok(b.breaker.tryAcquire().allowed);
});

t.test("a failed trial re-opens the breaker for a full openSeconds", async (t) => {
  const b = setup(2, 5);
  b.permit().fail();
  b.permit().fail();
  b.advance(6_000);
  b.permit().fail();
  t.equal(b.breaker.state, "open");
  t.equal(rejected(b.breaker.tryAcquire()), 5);
  t.same(b.changes, ["open", "half-open", "open"]);
});

t.test("a released trial (nothing was sent) gives the trial to the next caller", async (t) => {
  const b = setup(1, 1);
  b.permit().fail();
  b.advance(1_000);
  b.permit().release();
  t.equal(b.breaker.state, "half-open");
  const next = b.permit();
  next.succeed();
  t.equal(b.breaker.state, "closed");
});

t.test("results of permits from an earlier state are ignored, and a permit counts once", async (t) => {
  const b = setup(2, 5);
  const slowA = b.permit();
  const slowB = b.permit();
  b.permit().fail();
  b.permit().fail();
  t.equal(b.breaker.state, "open");
  slowA.succeed();
  t.equal(b.breaker.state, "open", "a success granted while closed does not close an open breaker");
  b.advance(5_000);
  const trial = b.permit();
  slowB.succeed();
  t.equal(b.breaker.state, "half-open", "nor does it close a half-open one");
  trial.fail();
  trial.succeed();
  t.equal(b.breaker.state, "open", "only the first result of a permit counts");
});

t.test("a closed breaker counts only consecutive failures among concurrent calls", async (t) => {
  const b = setup(2);
  const first = b.permit();
  const second = b.permit();
  first.fail();
  second.succeed();
  b.permit().fail();
  t.equal(b.breaker.state, "closed");
});

t.test("bad options are refused", async (t) => {
  t.throws(() => new CircuitBreaker({ failureThreshold: 0, openSeconds: 1, now: Date.now }), RangeError);
  t.throws(() => new CircuitBreaker({ failureThreshold: 1, openSeconds: 0, now: Date.now }), RangeError);
});
