import type { BackendConfig } from "../config/index.js";
import type { RedisClient } from "../redis/index.js";
import { type ClaimScript, type NonceClaim, streamKey, streamNamesKey, type RedisReplayGuard } from "../replay/index.js";
import { appendRefusal, claimAndAppendScript, clientCertificatesKey, createConsumerGroup, streamAppendArguments, streamAppendKeys, type StreamAppend } from "./redis-append.js";
import type { AcceptedMessage, Backend, Delivery } from "./backend.js";
import { buildStreamEntry, certificateSha256, type ForwardSigner } from "./stream-entry.js";
import type { StreamNameTemplate } from "./stream-template.js";

export type StreamBackendConfig = Extract<BackendConfig, { type: "stream" }>;

export interface RedisStreamBackendOptions {
  name: string;
  keyPrefix: string;
  config: StreamBackendConfig;
  /** The compiled `config.stream`. */
  template: StreamNameTemplate;
  guard: RedisReplayGuard;
  /** The connection the guard runs on, for the consumer group made at start. */
  redis: RedisClient;
  signer: ForwardSigner;
}

/**
 * A Redis Stream backend: the nonce claim and the XADD run in one script, so a 202 always
 * has its stream entry and a replay never gets one. The stream is `config.stream`, or its
 * template resolved per message, always under the key `<prefix>{<backend>}:<stream>` (one
 * hash slot with the backend's nonces). Backpressure refuses a message before its nonce is
 * claimed (503 backend-unavailable with Retry-After); so does a templated name beyond
 * `maxStreams` (422 stream-limit), whose names are kept in `<prefix>{<backend>}:meta:streams`.
 */
export class RedisStreamBackend implements Backend {
  readonly kind = "redis-stream";
  readonly name: string;
  private readonly options: RedisStreamBackendOptions;
  /** Thumbprints whose certificate this process has seen kept in Redis (a claim answered), until when it sends the DER again. */
  private readonly keptCertificates = new Map<string, number>();
  /** The claim-and-append script of this backend's shape (its configuration), made with its first message. */
  private script: ClaimScript | undefined;

  private constructor(options: RedisStreamBackendOptions) {
    this.name = options.name;
    this.options = options;
  }

  /**
   * Builds the backend; for a fixed stream name with a consumer group, creates the group now
   * (templated streams get theirs with their first entry, inside the claim script).
   */
  static async open(options: RedisStreamBackendOptions): Promise<RedisStreamBackend> {
    const { config, template } = options;
    if (config.consumerGroup !== undefined && template.fixedName !== undefined) {
      await createConsumerGroup(options.redis, streamKey(options.keyPrefix, options.name, template.fixedName), config.consumerGroup);
    }
    return new RedisStreamBackend(options);
  }

  async deliver(message: AcceptedMessage, claim: NonceClaim): Promise<Delivery> {
    const { config, template, keyPrefix, guard, signer } = this.options;
    // Resolved before anything is signed or claimed: a bad parameter spends no nonce.
    const name = template.resolve(message.route, message.params);
    const stream: StreamAppend = {
      key: streamKey(keyPrefix, this.name, name),
      certificatesKey: clientCertificatesKey(keyPrefix, this.name),
      trim: config.trim,
      consumerGroup: config.consumerGroup,
      backpressure: config.backpressure,
      // Clients choose templated names: the claim script caps how many there are.
      ...(template.fixedName === undefined ? { names: { key: streamNamesKey(keyPrefix, this.name), stream: name, maxStreams: config.maxStreams } } : {}),
    };
    const sha256 = certificateSha256(message.clientCertDer);
    const thumbprint = sha256.toString("base64url");
    const now = Date.now();
    const kept = (this.keptCertificates.get(thumbprint) ?? 0) > now;
    const fields = buildStreamEntry(message, signer, { sha256 });
    const certificate = { thumbprint, der: kept ? ("" as const) : message.clientCertDer };
    this.script ??= claimAndAppendScript(stream);
    const result = await guard.claimWith(this.script, streamAppendKeys(stream), claim, message.messageId, [...streamAppendArguments(stream, certificate), ...fields.flat()]);
    if (result.outcome === "refused") throw appendRefusal(result.reason, result.values, stream, this.name);
    if (result.outcome === "claimed" && !kept) this.rememberKept(thumbprint, now);
    if (result.outcome === "replayed") return { kind: "replayed" };
    const ids = { messageId: result.messageId, ...(result.entryId ? { entryId: result.entryId } : {}) };
    return result.outcome === "claimed" ? { kind: "accepted", ...ids } : { kind: "duplicate", ...ids };
  }

  /**
   * Notes that Redis holds this certificate. The note lasts a while, not for good: a Redis that
   * lost its data gets the certificate again within that time.
   */
  private rememberKept(thumbprint: string, now: number): void {
    if (this.keptCertificates.size >= MAX_KEPT_CERTIFICATES) this.keptCertificates.clear();
    this.keptCertificates.set(thumbprint, now + KEPT_CERTIFICATE_MS);
  }

  async close(): Promise<void> {}
}

/** How long the backend trusts that Redis still holds a certificate it sent. */
const KEPT_CERTIFICATE_MS = 10 * 60_000;
/** Thumbprints remembered at most (then forgotten at once: each is sent once more). */
const MAX_KEPT_CERTIFICATES = 10_000;
