import type { Logger } from "../log.js";

export interface CrashPolicyOptions {
  log: Logger;
  /** Counts each uncaught error (the metric `postern_uncaught_errors_total`). */
  count: () => void;
  /**
   * Called once when errors keep coming (more than `maxErrors` within `windowMs`): state may be
   * damaged in a way one request cannot explain, so the caller drains and exits non-zero for
   * its supervisor to restart it.
   */
  onFatal: (error: unknown) => void;
  maxErrors?: number;
  windowMs?: number;
  now?: () => number;
}

/**
 * What happens to an error no handler caught. Every request path has its own error boundary,
 * so an error that still gets here belongs to no request: one is logged with its stack,
 * counted and survived, because a gateway that exits on it hands every attacker who finds it a
 * kill switch. A burst of them is treated as damage and ends the process through `onFatal`.
 */
export function installCrashPolicy(target: { on(event: "uncaughtException" | "unhandledRejection", listener: (error: unknown) => void): unknown }, options: CrashPolicyOptions): void {
  const maxErrors = options.maxErrors ?? 10;
  const windowMs = options.windowMs ?? 60_000;
  const now = options.now ?? Date.now;
  const recent: number[] = [];
  let fatal = false;
  const onError = (kind: string) => (error: unknown) => {
    options.count();
    options.log.error(`${kind}: kept serving`, { error: error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ""}` : String(error) });
    const at = now();
    recent.push(at);
    while (recent.length > 0 && recent[0]! <= at - windowMs) recent.shift();
    if (recent.length > maxErrors && !fatal) {
      fatal = true;
      options.onFatal(error);
    }
  };
  target.on("uncaughtException", onError("uncaught exception"));
  target.on("unhandledRejection", onError("unhandled rejection"));
}
