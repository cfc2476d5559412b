export { PosternClient, type PosternClientOptions, type PreparedMessage, type SendOptions, type SendResult } from "./client.js";
export { PosternRequestError } from "./errors.js";
export { AdminClient, type AdminClientOptions } from "./admin-client.js";
export { KEY_TYPES, REVOCATION_REASON_NAMES } from "./admin-api.js";
export type { AuditViewJson, CertificateDetailJson, CertificateJson, CertificatePageJson, ChainCertificateJson, ConnectionJson, ConsoleSessionJson, IdentityRevokedJson, IssuedCertificateJson, IssuedPkcs12Json, ServerRenewalJson, TokenJson, TrafficJson } from "./admin-api.js";
