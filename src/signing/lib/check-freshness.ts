import { fail, type Failure } from "./result.js";
import type { SignatureParameters } from "./signature-params.js";

export interface FreshnessRules {
  nowMs: number;
  maxAgeSeconds: number;
  clockSkewSeconds: number;
}

/**
 * Time window of ARCHITECTURE.md item 5: `created > now + skew` is "from-future",
 * `created < now - maxAge - skew` and `expires < now - skew` are "stale". A signature without
 * `created` is only judged by `expires`; require `created` in the profile to forbid that.
 */
export function checkFreshness(params: SignatureParameters, rules: FreshnessRules): Failure | undefined {
  // A NaN anywhere would make every comparison false, i.e. accept: refuse instead.
  if (![rules.nowMs, rules.maxAgeSeconds, rules.clockSkewSeconds].every(Number.isFinite)) {
    return fail("internal", "the clock or the time window is not a number");
  }
  const skewMs = rules.clockSkewSeconds * 1000;
  const { created, expires } = params;
  if (created !== undefined) {
    if (created * 1000 > rules.nowMs + skewMs) return fail("from-future", "the signature was created in the future");
    if (created * 1000 < rules.nowMs - rules.maxAgeSeconds * 1000 - skewMs) {
      return fail("stale", "the signature is too old");
    }
  }
  if (expires !== undefined && expires * 1000 < rules.nowMs - skewMs) {
    return fail("stale", "the signature has expired");
  }
  return undefined;
}
