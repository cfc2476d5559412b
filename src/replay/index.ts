/** The public surface of src/replay/: everything outside it imports from here. */
export { type NonceGuard } from "./guard.js";
export { MemoryReplayGuard } from "./memory-guard.js";
export { NonceJournal } from "./nonce-journal.js";
export { type ClaimRecord, type NonceClaim, claimHorizonMs, claimRecord, isValidNonce, parseClaimRecord, requestFingerprint, streamKey, streamNamesKey } from "./nonce.js";
export { CLAIM_CHECK_LUA, CLAIM_COMMIT_LUA, type ClaimScript, RedisReplayGuard, type ScriptOutcome } from "./redis-guard.js";
