import type { ClientIdentity } from "../pki/index.js";
import type { NonceClaim } from "../replay/index.js";

/** A message that passed every check, on its way to a backend. */
export interface AcceptedMessage {
  messageId: string;
  route: string;
  /** Path parameters of the route match (`/v1/messages/:topic` -> { topic }). */
  params: Readonly<Record<string, string>>;
  identity: ClientIdentity;
  clientCertDer: Uint8Array;
  method: string;
  authority: string;
  path: string;
  /** Raw query with its "?", or "". */
  query: string;
  contentType: string;
  contentDigest: string;
  body: Buffer;
  receivedAtMs: number;
}

export type Delivery =
  | { kind: "accepted"; messageId: string; entryId?: string }
  /** An HTTP backend's answer, passed back to the client as it is (hop-by-hop headers removed). */
  | { kind: "response"; messageId: string; status: number; headers: Record<string, string>; body: Buffer }
  | { kind: "duplicate"; messageId: string; entryId?: string }
  | { kind: "replayed" };

/**
 * Where accepted messages go. `deliver` claims the nonce and hands the message over as one
 * step: it resolves only once the backend holds the message (fsync, XADD), and it throws a
 * PosternError when it could not (nothing is half-accepted).
 */
export interface Backend {
  readonly name: string;
  readonly kind: string;
  deliver(message: AcceptedMessage, claim: NonceClaim): Promise<Delivery>;
  close(): Promise<void>;
}
