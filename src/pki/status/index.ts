/** The public surface of src/pki/status/: everything outside it imports from here. */
export { CrlPublisher } from "./crl-publisher.js";
export { buildRootCrl } from "./crl.js";
export { MAX_OCSP_REQUEST_BYTES, type OcspCertStatus, decodeOcspGetPath, respondOcsp } from "./ocsp.js";
export { RevocationIndex } from "./revocation-index.js";
