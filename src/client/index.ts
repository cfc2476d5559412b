export { PosternClient, type PosternClientOptions, type PreparedMessage, type SendOptions, type SendResult } from "./client.js";
export { PosternRequestError } from "./errors.js";
export { AdminClient, type AdminClientOptions } from "./admin-client.js";
export type { CertificateJson, CertificatePageJson, IdentityRevokedJson, IssuedCertificateJson, IssuedPkcs12Json, ServerRenewalJson, TokenJson } from "./admin-api.js";
