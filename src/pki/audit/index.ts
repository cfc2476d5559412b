/** The public surface of src/pki/audit/: everything outside it imports from here. */
export { AuditLog, verifyAuditLog } from "./audit.js";
