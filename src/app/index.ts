/** The public surface of src/app/: everything outside it imports from here. */
export { installCrashPolicy } from "./crash-policy.js";
export { type ListeningAddresses, createApp } from "./create-app.js";
export { openPkiOffline, reissueBuiltins } from "./pki-offline.js";
