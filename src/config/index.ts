/** The public surface of src/config/: everything outside it imports from here. */
export { parseDuration } from "./duration.js";
export { matchesGlob, matchesIdentity } from "./identity-pattern.js";
export { configJsonSchema } from "./json-schema.js";
export { ConfigError, DEFAULT_CONFIG_PATH, loadConfig } from "./load.js";
export { type BackendConfig, type PosternConfig, type RateLimitConfig, type RouteConfig, usesRedis } from "./schema.js";
export { GATEWAY_REQUEST_FIELDS, forbiddenIdentityHeaders, isHopByHop } from "./reserved-headers.js";
export { NONCE_JOURNAL_FILE } from "./checks.js";
export { RESTART_SECTIONS, reloadable } from "./reload.js";
export { isInsideDir, stateLocations, type WritableLocation } from "./locations.js";
export { ADMIN_URL_ENV, PASSPHRASE_ENV, environmentVariable, processEnvironment, type Environment } from "./environment.js";
