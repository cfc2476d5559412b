/**
 * Embedded mode's durable files: all-or-nothing appends with group commit, a bounded pool of
 * open files, reading JSON lines from the end, and the storage health that readiness follows.
 * Only node:fs underneath, behind StorageFileSystem so tests can inject faults.
 */
export { AppendLog, classifyStorageFailure, StorageWriteError } from "./append-log.js";
export { nodeFileSystem, type StorageFile, type StorageFileSystem } from "./file-system.js";
export { GroupCommitLog, STORAGE_RETRY_AFTER_SECONDS, storageUnavailable, type CommitReporter } from "./group-commit.js";
export { DEFAULT_MAX_OPEN_FILES, LogPool, type LogPoolOptions } from "./log-pool.js";
export { DEFAULT_PROBE_INTERVAL_MS, MAX_PROBE_BYTES, MIN_PROBE_BYTES, PROBE_FILE, StorageHealth, type StorageHealthOptions } from "./storage-health.js";
export { endOfLastLine, linesBackward, repairTornTail, SCAN_CHUNK_BYTES } from "./tail-scan.js";
export { DurableAppender, fsyncDir, readStateFile, writeFileAtomic } from "./atomic-file.js";
export { withFileMutex } from "./file-mutex.js";
export {
  applyRetention,
  firstLineTimeMs,
  listRotated,
  newestLineTimeMs,
  rotatedPath,
  rotateFile,
  rotationDue,
  rotationPolicy,
  type RetentionSettings,
  type RotatedFile,
  type RotationPolicy,
} from "./rotation.js";
