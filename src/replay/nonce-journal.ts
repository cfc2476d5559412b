import { dirname } from "node:path";
import type { Logger } from "../log.js";
import {
  AppendLog,
  linesBackward,
  listRotated,
  rotationPolicy,
  type LogPool,
  type RetentionSettings,
  type RotationPolicy,
  type StorageFileSystem,
} from "../storage/index.js";
import type { NonceGuard } from "./guard.js";
import type { MemoryReplayGuard } from "./memory-guard.js";
import { claimRecord, nonceKey, parseClaimRecord, type ClaimRecord, type ClaimResult, type NonceClaim } from "./nonce.js";

export interface NonceJournalOptions {
  /** `<data.dir>/nonces.jsonl`. */
  path: string;
  fs: StorageFileSystem;
  pool: LogPool;
  guard: MemoryReplayGuard;
  log: Logger;
  now: () => number;
  /** How far back a start reads (claimHorizonMs). */
  horizonMs: number;
  /** `data.retention.nonces`: the journal is rotated by size and age; a rotated journal is removed once no claim in it can be live. */
  retention?: RetentionSettings;
}

type JournalLine = { atMs: number; claim: ClaimRecord } | { atMs: number; release: { key: string; messageId: string } };

/**
 * Embedded mode's nonce guard for backends that keep no file of their own (HTTP services):
 * each claim is appended to a journal (group commit, fsync) before `claim` resolves, so before
 * anything is forwarded; a claim that could not be written is given back and fails with
 * `storage-unavailable` (503). A release (nothing reached the upstream) is journalled too. At
 * start the journal is read from its end as far as live claims can reach, they are put back
 * into the memory guard, and the file is rewritten with only those (compaction). While running,
 * the journal rotates by size and age; a start reads the rotated journals too, as far as the
 * horizon reaches, and compaction folds them back into one file.
 */
export class NonceJournal implements NonceGuard {
  private lastAtMs = 0;
  private readonly rotation: RotationPolicy | undefined;

  private constructor(private readonly options: NonceJournalOptions) {
    const { retention, now, horizonMs } = options;
    // Rotated journals hold nothing but claims: gone as soon as the horizon has passed them.
    this.rotation = retention && rotationPolicy({ ...retention, keepFiles: 0, keepSeconds: 0 }, journalLineTimeMs, now, () => now() - horizonMs);
    if (this.rotation) this.rotation.keepMs = 1;
  }

  /**
   * Reads back and compacts an existing journal. @throws when it cannot be read (a start that
   * cannot rebuild its replay protection does not serve); a failed compaction only logs.
   */
  static async open(options: NonceJournalOptions): Promise<NonceJournal> {
    const journal = new NonceJournal(options);
    const rotated = await listRotated(options.fs, options.path);
    if ((await options.fs.fileSize(options.path)) !== undefined || rotated.length > 0) await journal.readBack(rotated.map((r) => r.path).reverse());
    return journal;
  }

  /** Claims the nonce; resolves once the claim is durable. @throws PosternError storage-unavailable. */
  claim(claim: NonceClaim, messageId: string): Promise<ClaimResult> {
    return this.options.guard.claim(claim, messageId, async () => {
      await this.write({ claim: claimRecord(claim, messageId) });
      return undefined;
    });
  }

  async release(claim: NonceClaim, messageId: string): Promise<void> {
    await this.options.guard.release(claim, messageId);
    // Unwritten, the claim comes back after a restart: the client then re-signs. Fail closed.
    await this.write({ release: { key: nonceKey("", claim), messageId } }).catch(() => undefined);
  }

  private write(record: { claim: ClaimRecord } | { release: { key: string; messageId: string } }): Promise<void> {
    return this.options.pool.append(this.options.path, () => {
      // atMs never goes back, so a start can stop at the first line beyond its horizon.
      this.lastAtMs = Math.max(this.lastAtMs, this.options.now());
      return JSON.stringify({ atMs: this.lastAtMs, ...record }) + "\n";
    }, this.rotation);
  }

  /** Reads the journal, then `rotated` (newest first), back as far as the horizon; then compacts. */
  private async readBack(rotated: string[]): Promise<void> {
    const { fs, path, guard, log, now, horizonMs } = this.options;
    const live: JournalLine[] = [];
    const released = new Set<string>();
    const oldest = now() - horizonMs;
    const files = [...((await fs.fileSize(path)) !== undefined ? [path] : []), ...rotated];
    files: for (const at of files) {
      const { file } = await fs.openFile(at);
      try {
        for await (const raw of linesBackward(file, await file.size())) {
          const line = parseJournalLine(raw);
          if (!line) continue;
          this.lastAtMs = Math.max(this.lastAtMs, line.atMs);
          if (line.atMs < oldest) break files;
          if ("release" in line) released.add(`${line.release.key} ${line.release.messageId}`);
          else if (!released.has(`${line.claim.key} ${line.claim.messageId}`) && guard.seed(line.claim)) live.push(line);
        }
      } finally {
        await file.close();
      }
    }
    if (live.length > 0) log.info("live nonce claims read back from the nonce journal", { claims: live.length });
    await this.compact(live.reverse(), rotated).catch((error: unknown) =>
      log.warn("the nonce journal could not be compacted; it keeps growing until the next start", { path, error: String(error) }),
    );
  }

  /**
   * Replaces the journal with `lines` (oldest first): temp file, fsync, rename, fsync the
   * directory; only then are the rotated journals removed (their live claims are in it now).
   */
  private async compact(lines: JournalLine[], rotated: string[]): Promise<void> {
    const { fs, path } = this.options;
    const temp = `${path}.compacting`;
    await fs.remove(temp);
    const out = await AppendLog.open(fs, temp);
    try {
      await out.append(Buffer.from(lines.map((l) => JSON.stringify(l) + "\n").join("")));
    } catch (error) {
      await out.close().catch(() => undefined);
      await fs.remove(temp).catch(() => undefined);
      throw error;
    }
    await out.close();
    await fs.rename(temp, path);
    await fs.syncDirectory(dirname(path));
    for (const old of rotated) await fs.remove(old);
    if (rotated.length > 0) await fs.syncDirectory(dirname(path));
  }
}

function journalLineTimeMs(raw: Buffer): number | undefined {
  return parseJournalLine(raw)?.atMs;
}

function parseJournalLine(raw: Buffer): JournalLine | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const { atMs, claim, release } = value as Record<string, unknown>;
  if (typeof atMs !== "number") return undefined;
  const record = parseClaimRecord(claim);
  if (record) return { atMs, claim: record };
  const r = release as Record<string, unknown> | undefined;
  if (typeof r?.key === "string" && typeof r.messageId === "string") return { atMs, release: { key: r.key, messageId: r.messageId } };
  return undefined;
}
