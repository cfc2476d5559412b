/** The public surface of src/pki/: everything outside it imports from here. */
export { AuditLog, verifyAuditLog } from "./audit/index.js";
export { type Channel, CertificateAuthority, type EnrolledResult, type IssuedResult } from "./authority.js";
export { certsOnlyCms } from "./der/index.js";
export { type EnsurePkiOptions, PKI_FILES, POD_PKI_FILES, type PkiMaterial, type PkiPlan, caExists, initCa, pkiPaths, planPki, recordPlan, resolvePassphrase, seedLedger, writePlannedFiles } from "./ca/index.js";
export { type ClientIdentity, identityFromCertificate } from "./identity.js";
export { type CertificateProfile, createCsr, csrAttributes, defineProfile } from "./issue/index.js";
export { KEY_ALGORITHMS, type KeyAlgorithm, generateKeyPair, isKeyAlgorithm, keyAlgorithmOf, keyHashOfCertificate, plainPrivateKeyPem } from "./keys/index.js";
export { AdminSecondFactor, type EnrolledAdmin, SECOND_FACTOR_ACTIONS, type SecondFactorAction, type SecondFactorPolicy, base32, hotp, otpauthUri } from "./otp/index.js";
export { pkiLocations } from "./runtime.js";
export { canonicalSerial } from "./serial.js";
export { DEFAULT_OVERLAP_SECONDS, type RingKeyEntry, SigningKeyRing } from "./signing-keys/index.js";
export { CrlPublisher, MAX_OCSP_REQUEST_BYTES, type OcspCertStatus, RevocationIndex, decodeOcspGetPath } from "./status/index.js";
export { type CertificateRecord, type CertificateStatus, FileStore, type PkiStore, REVOCATION_REASONS, RedisStore, type RevocationReason, type RevokedEntry } from "./store/index.js";
export { LEDGER_FILE, TrustGuard, TrustLedger, ledgerPkiId, openArchive, restoreBackup, sealArchive, setAsideForeignLedger, takeBackup } from "./trust/index.js";
export { openSigningKeys, type PkiRuntime, startPki } from "./runtime.js";
export { type ServerRenewal } from "./server-renewal.js";
export { type ServingCheck, type ServingMaterial, type ServingPart, checkServingMaterial } from "./ca/index.js";
export { openPkiOffline, reissueBuiltins } from "./offline.js";
