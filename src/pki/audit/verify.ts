/**
 * Checks an audit log's hash chain and sequence (`postern audit verify`). Pure reading.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";

export type AuditVerifyResult =
  | {
      ok: true;
      lines: number;
      /** Hash of the last line, to compare with an anchored head. */
      head: string;
      /** How many lines each action has (e.g. how many bootstrap issuances). */
      actions: Record<string, number>;
    }
  | { ok: false; line: number; reason: "changed" | "deleted" | "reordered" | "malformed" };

interface ParsedLine {
  seq: number;
  action: string;
  prev: string;
  hash: string;
}

const GENESIS = "0".repeat(64);
const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Verifies the file at `path` (a missing file throws). `line` is 1-based:
 * - `malformed`: the line is not a well-formed event (including a final line without newline);
 * - `deleted`: the sequence skips numbers that appear nowhere later (reported where the gap is);
 * - `reordered`: the sequence goes back, or skips to numbers that appear later;
 * - `changed`: this line's bytes no longer hash to the `prev` recorded by the next line (or
 *   the first line does not start the chain).
 * A change to the very last line, or truncation, is only visible against an anchored `head`.
 */
export async function verifyAuditLog(path: string): Promise<AuditVerifyResult> {
  const data = await readFile(path);
  const parsed: ParsedLine[] = [];
  for (let start = 0, n = 1; start < data.length; n++) {
    const nl = data.indexOf(0x0a, start);
    const end = nl === -1 ? data.length : nl;
    const line = parseLine(data.subarray(start, end));
    if (!line || nl === -1) return { ok: false, line: n, reason: "malformed" };
    parsed.push(line);
    start = nl + 1;
  }
  const laterSeqs = new Map<number, number>(); // seq -> last position holding it
  parsed.forEach((p, i) => laterSeqs.set(p.seq, i));
  let expectedSeq = 1;
  let prevHash = GENESIS;
  const actions: Record<string, number> = {};
  for (const [i, p] of parsed.entries()) {
    if (p.seq !== expectedSeq) {
      const movedLater = (laterSeqs.get(expectedSeq) ?? -1) > i;
      const reason = p.seq < expectedSeq || movedLater ? "reordered" : "deleted";
      return { ok: false, line: i + 1, reason };
    }
    if (p.prev !== prevHash) return { ok: false, line: Math.max(1, i), reason: "changed" };
    prevHash = p.hash;
    expectedSeq = p.seq + 1;
    actions[p.action] = (actions[p.action] ?? 0) + 1;
  }
  return { ok: true, lines: parsed.length, head: prevHash, actions };
}

function parseLine(bytes: Uint8Array): ParsedLine | undefined {
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
  return { seq: seq as number, action, prev, hash: createHash("sha256").update(bytes).digest("hex") };
}
