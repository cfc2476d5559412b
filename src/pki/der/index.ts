/** The public surface of src/pki/der/: everything outside it imports from here. */
export { type Bytes, DER_NULL, DER_TRUE, DerError, type DerNode, TAG, bitString, children, ctx, decodeBitString, decodeBoolean, decodeOid, decodeString, expectChildren, ia5, integerFromHex, namedBits, octets, oid, readOne, seq, set, time, tlv, tlvOf, toHex, uint, uintFromBytes, utf8 } from "./der.js";
export { publicKeyFromSpki } from "./key-spki.js";
export { x509 } from "./x509.js";
export { certsOnlyCms } from "./certs-only.js";
