/** The public surface of src/pki/trust/: everything outside it imports from here. */
export { openArchive, sealArchive } from "./backup-archive.js";
export { restoreBackup, takeBackup } from "./backup.js";
export { TrustGuard } from "./guard.js";
export { LEDGER_FILE, TrustLedger, ledgerPkiId, setAsideForeignLedger } from "./ledger.js";
