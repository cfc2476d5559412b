export { CLIENT_ALGORITHMS, SIGNATURE_ALGORITHMS, isSignatureAlgorithm, type SignatureAlgorithm } from "./algorithms.js";
export { MIN_RSA_MODULUS_BITS, algorithmForKey, keyMatchesAlgorithm } from "./algorithm-for-key.js";
export { FORWARD_TAG, PROFILE_COMPONENTS, PROFILE_PARAMETERS, PROFILE_TAG } from "./profile.js";
export type { HttpMessageParts } from "./http-message.js";
export { buildSignatureBase, type SignatureBaseOptions, type SignatureBaseResult } from "./signature-base.js";
export { signMessage, signRequest, type SignOptions, type SignedFields } from "./sign-message.js";
export {
  MAX_COVERED_COMPONENTS,
  verifyMessage,
  verifyRequest,
  type VerificationKey,
  type VerifiedParams,
  type VerifyOptions,
  type VerifyResult,
} from "./verify-message.js";
export { MAX_SIGNATURE_FIELD_CHARS } from "./lib/index.js";
export { createContentDigest, type DigestAlgorithm } from "./create-content-digest.js";
export { MAX_CONTENT_DIGEST_CHARS, verifyContentDigest, type ContentDigestResult } from "./verify-content-digest.js";
export { certificateThumbprint } from "./certificate-thumbprint.js";
export { PublicKeyCache } from "./public-key-cache.js";
