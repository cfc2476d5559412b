/** The public surface of src/pki/signing-keys/: everything outside it imports from here. */
export { DEFAULT_OVERLAP_SECONDS, type RingKeyEntry, SigningKeyRing } from "./signing-keys.js";
