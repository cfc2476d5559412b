/**
 * The public surface of src/sealed/: sealed payloads (compact JWE to a backend's ECDH key,
 * bound to route and sender), the gateway's header check that never decrypts, the consumer's
 * opening, and the backend key ring. The one home of `jose`.
 */
export {
  ROUTE_HEADER,
  SEAL_ALGORITHMS,
  SEAL_CURVES,
  SEAL_ENCRYPTION,
  SEALED_MEDIA_TYPE,
  SENDER_HEADER,
  sealedRoute,
  type SealAlgorithm,
  type SealBinding,
  type SealCurve,
  type SealedFailureCode,
} from "./profile.js";
export { checkSealedHeader, type SealedHeaderCheck, type SealedHeaderExpectations, type SealingKeyInfo } from "./check-header.js";
export {
  currentJwks,
  currentKeyInfo,
  parseSealingJwks,
  sealingKeyThumbprint,
  type PublicSealingJwk,
  type SealingJwksDocument,
  type SealingKeySet,
} from "./public-jwks.js";
export { sealPayload } from "./seal.js";
export { openSealed, type OpenedSeal } from "./open.js";
export {
  backendJwksPath,
  createBackendKeyRing,
  DEFAULT_SEAL_OVERLAP_SECONDS,
  loadBackendPrivateKeys,
  privateKeyFromPem,
  readBackendKeyRing,
  rotateBackendKeyRing,
  type BackendKeyEntry,
  type BackendKeyRingState,
  type BackendPrivateKey,
  type BackendRotateResult,
} from "./key-ring.js";
