import { createPrivateKey, randomBytes, X509Certificate, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { Agent, request, type Dispatcher } from "undici";
import { parseSealingJwks, SEALED_MEDIA_TYPE, sealedRoute, sealPayload, type SealingKeySet } from "../sealed/index.js";
import {
  certificateThumbprint,
  createContentDigest,
  PROFILE_COMPONENTS,
  PROFILE_TAG,
  signMessage,
} from "../signing/index.js";
import { PosternRequestError } from "./errors.js";

export interface PosternClientOptions {
  /** The gateway's base URL, e.g. https://localhost:8443 */
  url: string;
  /** PEM of the client certificate followed by its issuing CA (the gateway needs the chain). */
  cert: string | Buffer;
  /** PEM of the client's private key. */
  key: string | Buffer;
  /** PEM of the CA bundle that issued the gateway's server certificate. */
  ca: string | Buffer;
  /**
   * Attempts on network errors and on 503s that say nothing was stored or the outcome is
   * unknown (the same signed request each time, so the gateway accepts it at most once). Default 3.
   */
  attempts?: number;
  /** Most connections kept to the gateway (each costs a full mTLS handshake). Default 16. */
  connections?: number;
  /** Offer HTTP/2 (ALPN h2): many messages share one connection, and HPACK compresses the repeated signature fields. Default false. */
  http2?: boolean;
  now?: () => number;
  /** Injected for tests; default 24 random bytes, base64url. */
  nonce?: () => string;
  /** How long a backend's fetched encryption keys are used before fetching them again. Default 300. */
  sealKeysMaxAgeSeconds?: number;
}

/** Options of one `send`. */
export interface SendOptions {
  /**
   * Seal the body to a backend first: its JWKS's URL (the gateway's
   * `/.well-known/postern-backend-keys/<backend>` on the public listener) or a file holding it.
   * The body is then a JWE (application/jose) bound to this path and this client's certificate;
   * `contentType` travels inside it as `cty`.
   */
  seal?: string;
}

/**
 * 503 codes after which the same signed bytes may be sent again: nothing was stored, or (for
 * replay-store-timeout) the outcome is unknown and an exact re-send is idempotent.
 */
const RETRY_SAME_BYTES = new Set(["replay-store-timeout", "replay-store-unavailable", "replication-timeout", "backend-unavailable", "storage-unavailable"]);

/** The wait before a retry: the answer's Retry-After (at most 10 s), else exponential from 200 ms. */
function retryAfterMs(header: string | string[] | undefined, attempt: number): number {
  const seconds = Number(Array.isArray(header) ? header[0] : header);
  return Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds, 10) * 1000 : 100 * 2 ** attempt;
}

/** A signed request, ready to send (and to re-send unchanged). */
export interface PreparedMessage {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Buffer;
}

export interface SendResult {
  status: number;
  /** The message id the gateway assigned. */
  id: string;
  /** True when a retry found the message already accepted. */
  duplicate: boolean;
  body: Record<string, unknown>;
}

/**
 * Postern's client: signs each message per the gateway's profile (RFC 9421 over method,
 * authority, path, query, content type and an RFC 9530 Content-Digest; keyid = the client
 * certificate's thumbprint; a fresh nonce), sends it over mTLS with keep-alive, and retries
 * network failures with the same signature so the gateway accepts the message at most once.
 */
export class PosternClient {
  private readonly base: URL;
  private readonly key: KeyObject;
  private readonly keyid: string;
  private readonly agent: Agent;
  private readonly now: () => number;
  private readonly nonce: () => string;
  private readonly sealKeys = new Map<string, { keys: SealingKeySet; fetchedAtMs: number }>();

  constructor(private readonly options: PosternClientOptions) {
    this.base = new URL(options.url);
    this.key = createPrivateKey(options.key);
    this.keyid = certificateThumbprint(new X509Certificate(options.cert).raw);
    this.agent = new Agent({
      connect: { cert: options.cert, key: options.key, ca: options.ca },
      keepAliveTimeout: 30_000,
      connections: options.connections ?? 16,
      allowH2: options.http2 ?? false,
    });
    this.now = options.now ?? Date.now;
    this.nonce = options.nonce ?? (() => randomBytes(24).toString("base64url"));
  }

  /** Signs a message for `path` (may carry a query). */
  prepare(path: string, body: string | Uint8Array, contentType = "application/json", method = "POST"): PreparedMessage {
    const url = new URL(path, this.base);
    const bytes = Buffer.from(body);
    const headers: Record<string, string> = {
      "content-type": contentType,
      "content-digest": createContentDigest(bytes, "sha-256"),
    };
    const signed = signMessage(
      {
        method,
        scheme: "https",
        authority: url.host,
        path: url.pathname,
        query: url.search,
        headers: Object.entries(headers),
      },
      {
        key: this.key,
        keyid: this.keyid,
        components: PROFILE_COMPONENTS,
        created: Math.floor(this.now() / 1000),
        nonce: this.nonce(),
        tag: PROFILE_TAG,
      },
    );
    headers["signature-input"] = signed.signatureInput;
    headers["signature"] = signed.signature;
    return { method, url: url.toString(), headers, body: bytes };
  }

  /**
   * A backend's encryption keys from a URL or file, cached for `sealKeysMaxAgeSeconds`
   * (`refresh` fetches again). Each kid must be its key's thumbprint, so a substituted key
   * cannot pose as a current one, and the gateway refuses a body sealed to a kid it does not know.
   */
  async sealingKeys(source: string, refresh = false): Promise<SealingKeySet> {
    const cached = this.sealKeys.get(source);
    const maxAgeMs = (this.options.sealKeysMaxAgeSeconds ?? 300) * 1000;
    if (cached && !refresh && this.now() - cached.fetchedAtMs < maxAgeMs) return cached.keys;
    let document: unknown;
    if (/^https?:\/\//.test(source)) {
      const response = await request(source, { method: "GET" });
      const text = await response.body.text();
      if (response.statusCode !== 200) throw new PosternRequestError(response.statusCode, { code: "not-found", detail: `GET ${source} answered ${response.statusCode}` });
      document = JSON.parse(text);
    } else {
      document = JSON.parse(await readFile(source, "utf8"));
    }
    const keys = parseSealingJwks(document);
    this.sealKeys.set(source, { keys, fetchedAtMs: this.now() });
    return keys;
  }

  /** Seals `plaintext` to the backend whose keys `source` names, bound to `path` and this client, then signs it as `prepare` does. */
  async prepareSealed(path: string, plaintext: string | Uint8Array, contentType: string, source: string, method = "POST", refresh = false): Promise<PreparedMessage> {
    const url = new URL(path, this.base);
    const keys = await this.sealingKeys(source, refresh);
    const { jwe } = await sealPayload(Buffer.from(plaintext), keys, { route: sealedRoute(method, url.pathname), sender: this.keyid }, contentType);
    return this.prepare(path, jwe, SEALED_MEDIA_TYPE, method);
  }

  /** Sends one prepared message once; returns status, headers and parsed body, whatever the status. */
  async dispatch(message: PreparedMessage): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: unknown }> {
    const response = await request(message.url, {
      method: message.method as Dispatcher.HttpMethod,
      headers: message.headers,
      body: message.body,
      dispatcher: this.agent,
    });
    const text = await response.body.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return { status: response.statusCode, headers: response.headers, body };
  }

  /**
   * Signs and sends a message. Resolves with the message id on 2xx; throws
   * PosternRequestError for a problem answer and the network error after the last attempt.
   */
  async send(path: string, body: string | Uint8Array, contentType = "application/json", options: SendOptions = {}): Promise<SendResult> {
    const seal = options.seal;
    let message = seal === undefined ? this.prepare(path, body, contentType) : await this.prepareSealed(path, body, contentType, seal);
    let refreshedKeys = false;
    const attempts = Math.max(1, this.options.attempts ?? 3);
    for (let attempt = 1; ; attempt++) {
      let answer: Awaited<ReturnType<PosternClient["dispatch"]>>;
      try {
        answer = await this.dispatch(message);
      } catch (error) {
        if (attempt >= attempts) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
        continue;
      }
      const problem = (typeof answer.body === "object" && answer.body !== null ? answer.body : {}) as Record<string, unknown>;
      if (answer.status >= 200 && answer.status < 300) {
        return { status: answer.status, id: String(problem.id ?? ""), duplicate: false, body: problem };
      }
      if (answer.status === 503 && RETRY_SAME_BYTES.has(String(problem.code)) && attempt < attempts) {
        await new Promise((resolve) => setTimeout(resolve, retryAfterMs(answer.headers["retry-after"], attempt)));
        continue;
      }
      // The backend rotated its keys since they were fetched: fetch once more and seal again (a new message, a new nonce).
      if (seal !== undefined && !refreshedKeys && problem.code === "sealed-key-unknown") {
        refreshedKeys = true;
        message = await this.prepareSealed(path, body, contentType, seal, "POST", true);
        attempt--;
        continue;
      }
      // A retry of a message whose first answer was lost: the gateway names the original.
      if (attempt > 1 && answer.status === 409 && typeof problem.messageId === "string") {
        return { status: 202, id: problem.messageId, duplicate: true, body: problem };
      }
      throw new PosternRequestError(answer.status, problem);
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
