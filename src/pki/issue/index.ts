/** The public surface of src/pki/issue/: everything outside it imports from here. */
export { type IssuingCa, tbsChildren } from "./context.js";
export { createCsr } from "./csr-create.js";
export { csrAttributes } from "./csr-attributes.js";
export { type ParsedCsr, issueFromCsrNow, parseCsr } from "./csr.js";
export { type IssuedCertificate, type KeyAlgorithm, issueLeafDer } from "./issue.js";
export { type CertificateProfile, defineProfile, identityAllowed, keyAllowed, keyFamilyOf, lifetimeFor, rolesAllowed } from "./profile.js";
export { KEY_USAGE, authorityKeyIdentifier, basicConstraints, crlDistributionPoint, derToPem, encodeName, keyIdentifierOf, keyUsage, randomSerial, signCertificate, subjectKeyIdentifier } from "./tbs.js";
