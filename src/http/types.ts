import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { Peer } from "../tls/index.js";

/** A request over HTTP/1.1 or HTTP/2 (Node's compatibility API): the parts handlers use are the same. */
export type AnyRequest = IncomingMessage | Http2ServerRequest;
export type AnyResponse = ServerResponse | Http2ServerResponse;

export type PeerHandler = (req: AnyRequest, res: AnyResponse, peer: Peer) => void;

/** A handler on a listener that also serves clients without a certificate (enrollment). */
export type OptionalPeerHandler = (req: AnyRequest, res: AnyResponse, peer: Peer | undefined) => void;
