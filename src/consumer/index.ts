export { embeddedStreamFiles, entryIdAfter, readEmbeddedEntries, type EmbeddedEntry } from "./embedded-files.js";
export { loadJwks, parseJwks, type GatewayKeys } from "./jwks.js";
export { fieldsOf, readClientCertificate, readStreamEntry } from "./redis-entries.js";
export { verifyStreamEntry, type EntryVerification, type StreamEntryFields, type VerifyEntryOptions } from "./verify-entry.js";
export {
  claimStale,
  deadLetter,
  DEAD_LETTER_FIELDS,
  deliveryCount,
  originalFields,
  readNew,
  type ConsumerRedis,
  type StreamEntry,
} from "./dead-letter.js";
export { openSealedEntry } from "./open-entry.js";
export {
  loadBackendPrivateKeys,
  SEALED_MEDIA_TYPE,
  type BackendPrivateKey,
  type OpenedSeal,
} from "../sealed/index.js";
