import type { RedisReplayGuard } from "../replay/redis-guard.js";
import type { NonceClaim } from "../replay/nonce.js";
import type { AcceptedMessage, Backend, Delivery } from "./backend.js";
import { buildStreamEntry, type ForwardSigner } from "./stream-entry.js";

/**
 * A Redis Stream backend: the nonce claim and the XADD run in one script, so a 202 always
 * has its stream entry and a replay never gets one.
 */
export class RedisStreamBackend implements Backend {
  readonly kind = "redis-stream";

  constructor(
    readonly name: string,
    private readonly stream: { key: string; maxLength: number },
    private readonly guard: RedisReplayGuard,
    private readonly signer: ForwardSigner,
  ) {}

  async deliver(message: AcceptedMessage, claim: NonceClaim): Promise<Delivery> {
    const fields = buildStreamEntry(message, this.signer);
    const result = await this.guard.claimAndAppend(claim, message.messageId, this.stream, fields);
    if (result.outcome === "replayed") return { kind: "replayed" };
    const ids = { messageId: result.messageId, ...(result.entryId ? { entryId: result.entryId } : {}) };
    return result.outcome === "claimed" ? { kind: "accepted", ...ids } : { kind: "duplicate", ...ids };
  }

  async close(): Promise<void> {}
}
