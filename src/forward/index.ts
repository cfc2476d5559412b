/** The public surface of src/forward/: everything outside it imports from here. */
export { type AcceptedMessage, type Backend, type Delivery } from "./backend.js";
export { FileStreamBackend } from "./file-stream.js";
export { HttpBackend } from "./http-backend.js";
export { clientCertificatesKey } from "./redis-append.js";
export { RedisStreamBackend, type StreamBackendConfig } from "./redis-stream.js";
export { type CertificateInEntry, type ForwardSigner, STREAM_COMPONENTS, STREAM_FIELDS, certificateSha256, clientCertField, streamEntryToRequest } from "./stream-entry.js";
export { StreamFiles } from "./stream-files.js";
export { compileStreamTemplate, routeParamNames } from "./stream-template.js";
