/** The public surface of src/pki/ca/: everything outside it imports from here. */
export { builtinRecord, recordPlan, seedLedger } from "./bootstrap-record.js";
export { type EnsurePkiOptions, type PkiMaterial, type PkiPlan, planPki } from "./bootstrap.js";
export { PKI_FILES, POD_PKI_FILES, exists, pkiPaths, readText, resolvePassphrase, writePlannedFiles } from "./ca-files.js";
export { caExists, initCa } from "./ca.js";
export { type ServingCheck, type ServingFiles, type ServingMaterial, type ServingPart, type ServingRefusal, checkServingMaterial, readServingMaterial } from "./serving-material.js";
