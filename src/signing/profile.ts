/**
 * Default covered components of Postern's client signature profile (ARCHITECTURE.md,
 * "The profile"). A verifier passes these as `requiredComponents`; more may be covered.
 */
export const PROFILE_COMPONENTS: readonly string[] = Object.freeze([
  "@method",
  "@authority",
  "@path",
  "@query",
  "content-type",
  "content-digest",
]);

/** Signature parameters Postern's profile requires of a client signature. */
export const PROFILE_PARAMETERS: readonly ("created" | "nonce" | "keyid" | "tag")[] = Object.freeze([
  "created",
  "nonce",
  "keyid",
  "tag",
] as const);

/** The `tag` of a client signature meant for Postern. */
export const PROFILE_TAG = "postern";

/** The `tag` of the signature Postern adds to what it forwards. */
export const FORWARD_TAG = "postern-forward";
