import { Agent, request, type Dispatcher } from "undici";
import { PosternRequestError } from "./errors.js";

export interface AdminClientOptions {
  /** e.g. https://127.0.0.1:8444 */
  url: string;
  /** Client certificate chain and key PEM; omit both for token enrollment. */
  cert?: string | Buffer;
  key?: string | Buffer;
  ca: string | Buffer;
}

/** A small client of Postern's admin API (JSON over mTLS). */
export class AdminClient {
  private readonly agent: Agent;

  constructor(private readonly options: AdminClientOptions) {
    this.agent = new Agent({
      connect: { ca: options.ca, ...(options.cert && options.key ? { cert: options.cert, key: options.key } : {}) },
    });
  }

  /** Calls an endpoint; resolves with the parsed JSON (or raw bytes for non-JSON answers); throws PosternRequestError on a problem. */
  async call(method: Dispatcher.HttpMethod, path: string, body?: unknown): Promise<unknown> {
    const response = await request(new URL(path, this.options.url), {
      method,
      dispatcher: this.agent,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
    });
    const bytes = Buffer.from(await response.body.arrayBuffer());
    const type = String(response.headers["content-type"] ?? "");
    const parsed: unknown = type.includes("json") && bytes.length > 0 ? JSON.parse(bytes.toString("utf8")) : bytes;
    if (response.statusCode >= 400) {
      throw new PosternRequestError(response.statusCode, (typeof parsed === "object" && parsed !== null && !Buffer.isBuffer(parsed) ? parsed : {}) as Record<string, unknown>);
    }
    return parsed;
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
