import { ERROR_CODES, type ErrorCode, PosternError } from "../errors.js";

/**
 * The cluster channel between the primary and one worker (node:cluster's IPC pipe), as calls
 * and one-way notes. Calls made in the same turn of the event loop travel as one IPC message
 * (and their answers as one), so a burst of messages costs one serialisation and one pipe
 * write per side, not one per message. A PosternError crosses with its code, detail and
 * extensions; any other error arrives as a plain Error with its message only.
 */

/** What one end of the pipe can do: `process` in a worker, a `cluster.Worker` in the primary. */
export interface ChannelEnd {
  send(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
  /** The other end went away: pending calls fail. */
  onClose(listener: () => void): void;
}

type Call = { id: number; op: string; args: unknown } | { op: string; args: unknown; id?: undefined };
type Result = { id: number; value: unknown } | { id: number; error: { code?: string; message: string; extensions?: Record<string, unknown> } };
interface Envelope {
  postern: "rpc";
  calls?: Call[];
  results?: Result[];
}

type Handler = (args: never) => unknown;

export class ClusterChannel {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void; timer: NodeJS.Timeout | undefined }>();
  private readonly handlers = new Map<string, Handler>();
  private outCalls: Call[] = [];
  private outResults: Result[] = [];
  private flushing = false;
  private closed = false;

  constructor(private readonly end: ChannelEnd) {
    end.onMessage((message) => this.receive(message));
    end.onClose(() => {
      this.closed = true;
      for (const [id, call] of this.pending) {
        clearTimeout(call.timer);
        this.pending.delete(id);
        call.reject(new PosternError("internal", "the cluster channel closed before an answer came"));
      }
    });
  }

  /** Serves `op` for the other end; the handler's value (or PosternError) is the answer. */
  handle<A, R>(op: string, handler: (args: A) => R | Promise<R>): void {
    this.handlers.set(op, handler as Handler);
  }

  /** Calls `op` on the other end; rejects after `timeoutMs` (0: never) or when the channel closes. */
  call<R>(op: string, args: unknown, timeoutMs = 0): Promise<R> {
    if (this.closed) return Promise.reject(new PosternError("internal", "the cluster channel is closed"));
    const id = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      const timer = timeoutMs > 0
        ? setTimeout(() => {
            this.pending.delete(id);
            reject(new PosternError("internal", `the cluster channel's ${op} call got no answer in ${timeoutMs} ms`));
          }, timeoutMs)
        : undefined;
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      this.outCalls.push({ id, op, args });
      this.schedule();
    });
  }

  /** A one-way note (no answer): revocations, state changes. */
  notify(op: string, args: unknown): void {
    if (this.closed) return;
    this.outCalls.push({ op, args });
    this.schedule();
  }

  private schedule(): void {
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushing = false;
    if (this.closed) return;
    const envelope: Envelope = { postern: "rpc" };
    if (this.outCalls.length > 0) envelope.calls = this.outCalls;
    if (this.outResults.length > 0) envelope.results = this.outResults;
    this.outCalls = [];
    this.outResults = [];
    try {
      this.end.send(envelope);
    } catch {
      // The pipe is gone; its close event fails what is pending.
    }
  }

  private receive(message: unknown): void {
    if (typeof message !== "object" || message === null || (message as Envelope).postern !== "rpc") return;
    const { calls, results } = message as Envelope;
    for (const result of results ?? []) {
      const call = this.pending.get(result.id);
      if (!call) continue;
      this.pending.delete(result.id);
      clearTimeout(call.timer);
      if ("error" in result) call.reject(revive(result.error));
      else call.resolve(result.value);
    }
    for (const call of calls ?? []) void this.run(call);
  }

  private async run(call: Call): Promise<void> {
    const handler = this.handlers.get(call.op);
    let result: Result | undefined;
    try {
      if (!handler) throw new PosternError("internal", `no handler for ${call.op} on this end of the cluster channel`);
      const value = await handler(call.args as never);
      if (call.id !== undefined) result = { id: call.id, value: value ?? null };
    } catch (error) {
      if (call.id !== undefined) result = { id: call.id, error: flatten(error) };
    }
    if (result && !this.closed) {
      this.outResults.push(result);
      this.schedule();
    }
  }
}

function flatten(error: unknown): { code?: string; message: string; extensions?: Record<string, unknown> } {
  if (error instanceof PosternError) return { code: error.code, message: error.detail ?? error.message, extensions: { ...error.extensions } };
  return { message: error instanceof Error ? error.message : String(error) };
}

function revive(error: { code?: string; message: string; extensions?: Record<string, unknown> }): Error {
  if (error.code !== undefined && error.code in ERROR_CODES) {
    return new PosternError(error.code as ErrorCode, error.message, error.extensions ? { extensions: error.extensions } : {});
  }
  return new Error(error.message);
}
