/** The public surface of src/pki/store/: everything outside it imports from here. */
export { isRevocationReason } from "./common.js";
export { FileStore } from "./file-store.js";
export { RedisStore } from "./redis-store.js";
export { type CertificateFilter, type CertificatePage, type CertificateRecord, type CertificateStatus, type EnrollmentTokenRecord, type PkiStore, REVOCATION_REASONS, type RevocationReason, type RevokedEntry, type StoredCrl } from "./store.js";
