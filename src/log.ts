import { pino, stdTimeFunctions, type DestinationStream, type Logger as PinoLogger } from "pino";

/**
 * Postern's logger: one JSON object per line on stderr (stdout stays for people), as pino
 * writes it: `level` (pino's numbers), `time`, `pid`, `hostname`, `msg`, then the fields.
 * Everything else depends on this interface, so tests can pass `silentLogger`.
 */
export interface Logger {
  debug?(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  /**
   * An info line whose fields the caller built from known, non-secret values only (the access
   * log): written without the redaction pass, which costs more than the rest of the line.
   * Loggers without it get `info`.
   */
  trusted?(message: string, fields: Record<string, unknown>): void;
}

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

export interface LoggerOptions {
  level?: LogLevel;
  /** Human-readable lines instead of JSON (default: when stderr is a terminal). */
  pretty?: boolean;
  /** Where lines go; default stderr, buffered. */
  destination?: DestinationStream;
}

/**
 * Field names whose values are never written, wherever they appear one level deep: a log line
 * must not carry a body, a key, a token, a passphrase or a signature, even by mistake.
 */
const REDACTED = ["body", "token", "passphrase", "password", "key", "privateKey", "signature", "signature-input", "authorization", "csr", "pkcs12"];

/** stderr lines are gathered up to this many bytes per write (one syscall for many lines under load)... */
const LOG_BUFFER_BYTES = 4096;
/** ...and written at least this often when traffic is light, so a line is never held back long. */
const LOG_FLUSH_INTERVAL_MS = 200;

export function createLogger(options: LoggerOptions = {}): Logger {
  const pretty = options.pretty ?? process.stderr.isTTY === true;
  const destination = options.destination ?? (pretty ? prettyDestination((line) => process.stderr.write(line)) : bufferedStderr());
  const level = options.level ?? "info";
  const logger: PinoLogger = pino(
    {
      level,
      timestamp: stdTimeFunctions.isoTime,
      redact: { paths: [...REDACTED, ...REDACTED.map((name) => `*.${name}`)], censor: "[redacted]" },
    },
    destination,
  );
  // Same destination and line format, no redaction pass: for `trusted` lines only.
  const plain: PinoLogger = pino({ level, timestamp: stdTimeFunctions.isoTime }, destination);
  const at =
    (level: "debug" | "info" | "warn" | "error") =>
    (message: string, fields?: Record<string, unknown>): void => {
      if (fields) logger[level](fields, message);
      else logger[level](message);
    };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error"), trusted: (message, fields) => plain.info(fields, message) };
}

/**
 * stderr through pino's SonicBoom, buffered: lines are gathered and written together (pino
 * flushes what is left when the process exits), and a partial buffer is written on a timer.
 */
function bufferedStderr(): DestinationStream {
  return pino.destination({ dest: 2, sync: false, minLength: LOG_BUFFER_BYTES, periodicFlush: LOG_FLUSH_INTERVAL_MS });
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

const LEVEL_NAMES: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };

/** For a terminal: `12:01:02.345 INFO  msg key=value …` from pino's JSON lines. */
export function prettyDestination(write: (text: string) => void): DestinationStream {
  return {
    write(line: string) {
      let record: Record<string, unknown>;
      try {
        record = JSON.parse(line) as Record<string, unknown>;
      } catch {
        write(line);
        return;
      }
      const { level, time, msg, pid: _pid, hostname: _hostname, ...fields } = record;
      const clock = typeof time === "string" ? time.slice(11, 23) : "";
      const rest = Object.entries(fields)
        .map(([k, v]) => `${k}=${typeof v === "string" && !/\s/.test(v) ? v : JSON.stringify(v)}`)
        .join(" ");
      write(`${clock} ${(LEVEL_NAMES[Number(level)] ?? String(level)).padEnd(5)} ${String(msg ?? "")}${rest ? ` ${rest}` : ""}\n`);
    },
  };
}

/**
 * Lets at most `perSecond` lines a second through for each key (a flood of refused handshakes
 * must not flood the log), and reports how many were held back with the next line let through.
 */
export function logSampler(perSecond: number, now: () => number = Date.now): (key: string, emit: (suppressed: number) => void) => void {
  const windows = new Map<string, { startMs: number; count: number; suppressed: number }>();
  return (key, emit) => {
    const at = now();
    let window = windows.get(key);
    if (!window || at - window.startMs >= 1000) {
      const suppressed = window?.suppressed ?? 0;
      window = { startMs: at, count: 0, suppressed: 0 };
      windows.set(key, window);
      window.count += 1;
      emit(suppressed);
      return;
    }
    if (window.count < perSecond) {
      window.count += 1;
      emit(0);
    } else {
      window.suppressed += 1;
    }
  };
}
