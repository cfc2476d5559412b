import type { Delivery, PreparedEntry } from "../forward/index.js";
import type { BucketLimit, RateLimiter } from "../ratelimit/index.js";
import type { NonceClaim, NonceGuard } from "../replay/index.js";
import type { ClusterChannel } from "./cluster-rpc.js";

/**
 * What a cluster worker asks of the primary in embedded mode, where one process must own the
 * nonce set, the message files, the nonce journal and the rate-limit buckets. The primary
 * serves the same names (see `servePrimary` in cluster-primary.ts).
 */
export const PRIMARY_OPS = { store: "store", claim: "claim", release: "release", take: "take", peek: "peek" } as const;

/** The primary's nonce journal (HTTP backends' claims), seen from a worker. */
export function remoteNonceGuard(channel: ClusterChannel): NonceGuard {
  return {
    claim: (claim: NonceClaim, messageId: string) => channel.call(PRIMARY_OPS.claim, { claim, messageId }),
    release: (claim: NonceClaim, messageId: string) => channel.call(PRIMARY_OPS.release, { claim, messageId }),
  };
}

/** The primary's claim-and-append of an embedded stream backend, seen from a worker. */
export function remoteStore(channel: ClusterChannel): (backend: string, entry: PreparedEntry) => Promise<Delivery> {
  return (backend, entry) => channel.call(PRIMARY_OPS.store, { backend, entry });
}

/** The primary's in-memory token buckets, so a route's limit holds across workers as in one process. */
export function remoteRateLimiter(channel: ClusterChannel): RateLimiter {
  return {
    take: (key: string, limit: BucketLimit) => channel.call(PRIMARY_OPS.take, { key, limit }),
    peek: (key: string, limit: BucketLimit) => channel.call(PRIMARY_OPS.peek, { key, limit }),
  };
}
