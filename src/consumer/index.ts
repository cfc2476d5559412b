export { loadJwks, parseJwks, type GatewayKeys } from "./jwks.js";
export { fieldsOf, readStreamEntry } from "./redis-entries.js";
export { verifyStreamEntry, type EntryVerification, type StreamEntryFields, type VerifyEntryOptions } from "./verify-entry.js";
