/**
 * Checks an audit log's hash chain and sequence (`postern audit verify`), across its rotated
 * files (`<path>.000001`, ... oldest first, then `<path>`). Pure reading.
 */
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** Where the retained chain begins. */
export interface AuditChainStart {
  /** The seq of the first retained line. */
  seq: number;
  /** The file holding it. */
  file: string;
  /** True when it is the log's very first line; false when retention removed older files. */
  genesis: boolean;
  /** When not genesis: the rotated file that held the line before it (removed). */
  after?: string;
}

export type AuditVerifyResult =
  | {
      ok: true;
      lines: number;
      /** Hash of the last line, to compare with an anchored head. */
      head: string;
      /** How many lines each action has (e.g. how many bootstrap issuances). */
      actions: Record<string, number>;
      /** The files read, oldest first, with their line counts. */
      files: Array<{ file: string; lines: number }>;
      start: AuditChainStart;
    }
  | {
      ok: false;
      /** The file holding the bad line (or, for `missing-file`, the file after the gap). */
      file: string;
      /** 1-based line in `file`. */
      line: number;
      reason: "changed" | "deleted" | "reordered" | "malformed" | "missing-file";
      /** For `missing-file`: the name of the file that is gone. */
      missing?: string;
    };

interface ParsedLine {
  seq: number;
  action: string;
  subject: string;
  prev: string;
  hash: string;
  file: string;
  line: number;
}

const GENESIS = "0".repeat(64);
const HEX64 = /^[0-9a-f]{64}$/;
const ROTATE = "audit.rotate";

/** The rotated files of `path`, oldest first, with their numbers. */
async function rotatedFiles(path: string): Promise<Array<{ path: string; number: number }>> {
  const base = basename(path);
  const names = await readdir(dirname(path)).catch(() => [] as string[]);
  return names
    .flatMap((name) => {
      const m = name.startsWith(base + ".") ? /^(\d{6,})$/.exec(name.slice(base.length + 1)) : null;
      return m ? [{ path: join(dirname(path), name), number: Number(m[1]) }] : [];
    })
    .sort((a, b) => a.number - b.number);
}

const rotatedName = (path: string, n: number) => `${basename(path)}.${String(n).padStart(6, "0")}`;

/**
 * Verifies the log at `path` with its rotated files (a log with neither throws ENOENT). `line`
 * is 1-based within `file`:
 * - `malformed`: the line is not a well-formed event (including a final line without newline);
 * - `deleted`: the sequence skips numbers that appear nowhere later (reported where the gap is);
 * - `reordered`: the sequence goes back, or skips to numbers that appear later;
 * - `changed`: this line's bytes no longer hash to the `prev` recorded by the next line (or
 *   the first line does not start the chain);
 * - `missing-file`: a rotated file between two retained ones is gone (retention only ever
 *   removes the oldest).
 * The chain may begin after the genesis only where retention removed the oldest files: the
 * first retained line must then be the `audit.rotate` event naming the file before it.
 * A change to the very last line, or truncation, is only visible against an anchored `head`.
 */
export async function verifyAuditLog(path: string): Promise<AuditVerifyResult> {
  const rotated = await rotatedFiles(path);
  for (let i = 1; i < rotated.length; i++) {
    const expected = rotated[i - 1]!.number + 1;
    if (rotated[i]!.number !== expected) return { ok: false, file: rotated[i]!.path, line: 0, reason: "missing-file", missing: rotatedName(path, expected) };
  }
  const active = await readFile(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT" && rotated.length > 0) return Buffer.alloc(0);
    throw error;
  });
  const sources = [...(await Promise.all(rotated.map(async (r) => ({ file: r.path, data: await readFile(r.path) })))), { file: path, data: active }];
  const parsed: ParsedLine[] = [];
  const files: Array<{ file: string; lines: number }> = [];
  for (const { file, data } of sources) {
    let count = 0;
    for (let start = 0, n = 1; start < data.length; n++) {
      const nl = data.indexOf(0x0a, start);
      const end = nl === -1 ? data.length : nl;
      const line = parseLine(data.subarray(start, end), file, n);
      if (!line || nl === -1) return { ok: false, file, line: n, reason: "malformed" };
      parsed.push(line);
      count += 1;
      start = nl + 1;
    }
    files.push({ file, lines: count });
  }
  const first = parsed[0];
  const start = chainStart(path, first, rotated[0]?.number);
  if (!start) {
    const reason = first && first.seq !== 1 ? (parsed.some((p) => p.seq === 1) ? "reordered" : "deleted") : "changed";
    return { ok: false, file: first?.file ?? path, line: 1, reason };
  }

  const laterSeqs = new Map<number, number>(); // seq -> last position holding it
  parsed.forEach((p, i) => laterSeqs.set(p.seq, i));
  let expectedSeq = first?.seq ?? 1;
  let prevHash = first?.prev ?? GENESIS;
  const actions: Record<string, number> = {};
  const present = new Set(sources.map((source) => basename(source.file)));
  for (const [i, p] of parsed.entries()) {
    // A file begun by rotation names the file before it: that one must be the file read just before.
    if (i > 0 && p.line === 1 && p.action === ROTATE && p.subject !== basename(parsed[i - 1]!.file) && !present.has(p.subject)) {
      return { ok: false, file: p.file, line: 1, reason: "missing-file", missing: p.subject };
    }
    if (p.seq !== expectedSeq) {
      const movedLater = (laterSeqs.get(expectedSeq) ?? -1) > i;
      const reason = p.seq < expectedSeq || movedLater ? "reordered" : "deleted";
      return { ok: false, file: p.file, line: p.line, reason };
    }
    if (p.prev !== prevHash) {
      // The line before (possibly the last of the previous file) was changed.
      const culprit = parsed[Math.max(0, i - 1)]!;
      return { ok: false, file: culprit.file, line: culprit.line, reason: "changed" };
    }
    prevHash = p.hash;
    expectedSeq = p.seq + 1;
    actions[p.action] = (actions[p.action] ?? 0) + 1;
  }
  return { ok: true, lines: parsed.length, head: prevHash, actions, files, start };
}

/**
 * Where a retained chain may begin: at the genesis, or, after retention removed older files,
 * at the `audit.rotate` line that names the file before the oldest retained one.
 */
function chainStart(path: string, first: ParsedLine | undefined, oldestNumber: number | undefined): AuditChainStart | undefined {
  if (!first) return { seq: 0, file: path, genesis: true };
  if (first.seq === 1 && first.prev === GENESIS) return { seq: 1, file: first.file, genesis: true };
  if (first.action !== ROTATE) return undefined;
  // The oldest retained file is rotation N: its first line names rotation N-1. With no rotated
  // file left, the active file's first line names the newest removed one.
  const expected = oldestNumber === undefined ? undefined : rotatedName(path, oldestNumber - 1);
  if (oldestNumber !== undefined && (oldestNumber <= 1 || first.subject !== expected)) return undefined;
  return { seq: first.seq, file: first.file, genesis: false, after: first.subject };
}

function parseLine(bytes: Uint8Array, file: string, line: number): ParsedLine | undefined {
  let event: Record<string, unknown>;
  try {
    event = JSON.parse(Buffer.from(bytes).toString("utf8")) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof event !== "object" || event === null) return undefined;
  const { seq, at, actor, action, subject, details, prev } = event;
  if (!Number.isInteger(seq) || (seq as number) < 1) return undefined;
  if (typeof at !== "string" || Number.isNaN(Date.parse(at))) return undefined;
  if (typeof actor !== "string" || typeof action !== "string" || typeof subject !== "string") return undefined;
  if (typeof details !== "object" || details === null || Array.isArray(details)) return undefined;
  if (typeof prev !== "string" || !HEX64.test(prev)) return undefined;
  return { seq: seq as number, action, subject, prev, hash: createHash("sha256").update(bytes).digest("hex"), file, line };
}
