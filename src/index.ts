/**
 * Postern as a library: the RFC 9421 / RFC 9530 signing and verifying functions, the client
 * SDK, and the consumer-side verifier of what the gateway forwards.
 */
export {
  signRequest,
  signMessage,
  verifyRequest,
  verifyMessage,
  createContentDigest,
  verifyContentDigest,
  certificateThumbprint,
  buildSignatureBase,
  PublicKeyCache,
  CLIENT_ALGORITHMS,
  PROFILE_COMPONENTS,
  PROFILE_TAG,
  FORWARD_TAG,
  type HttpMessageParts,
  type SignOptions,
  type SignedFields,
  type VerifyOptions,
  type VerifyResult,
  type VerificationKey,
  type SignatureAlgorithm,
  type DigestAlgorithm,
} from "./signing/index.js";
export { PosternClient, AdminClient, PosternRequestError, type PosternClientOptions, type SendResult, type PreparedMessage } from "./client/index.js";
export * from "./consumer/index.js";
export { ERROR_CODES, PosternError, isErrorCode, type ErrorCode, type ProblemDetails } from "./errors.js";
