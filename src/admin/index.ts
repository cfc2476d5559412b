/** The public surface of src/admin/: everything outside it imports from here. */
export { consoleEndpoints, type ConsoleDeps } from "./console-endpoints.js";
export { CONSOLE_CSP, consoleFiles } from "./console-files.js";
export { explainEndpoint } from "./explain-endpoint.js";
export { pkiEndpoints } from "./pki-endpoints.js";
export { serverRenewalEndpoint } from "./server-renewal-endpoint.js";
export { type AdminEndpoint, type AdminReply, type AdminRequest, adminHandler } from "./router.js";
