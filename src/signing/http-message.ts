/**
 * The parts of one HTTP message that a signature can cover, as plain values. Built by the
 * transport (from Node's `req.method`, `req.url`, `req.rawHeaders`, the TLS socket); the
 * signing code never sees a socket or a request object.
 */
export interface HttpMessageParts {
  /** Request method as sent, e.g. "POST" (case-sensitive per RFC 9421 §2.2.1). */
  method: string;
  scheme: "http" | "https";
  /** host[:port] as sent (Host header); lowercased and stripped of a default port for @authority. */
  authority: string;
  /** Raw path without the query, e.g. "/v1/messages/orders"; "" reads as "/". */
  path: string;
  /** Raw query including "?", or "" when the request has none (then @query is "?"). */
  query: string;
  /**
   * Every header line in wire order, names in any case (Node `req.rawHeaders` paired).
   * Node's merged `req.headers` must not be used: it hides duplicate lines.
   */
  headers: ReadonlyArray<readonly [name: string, value: string]>;
  /** Trailer lines in wire order, for `;tr` components. */
  trailers?: ReadonlyArray<readonly [name: string, value: string]>;
  /** Status code of a response (@status); absent for requests. */
  status?: number;
}
