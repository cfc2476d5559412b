/** The public surface of src/pki/keys/: everything outside it imports from here. */
export { keyHashOfCertificate, keyHashOfSpki } from "./key-hash.js";
export { KEY_ALGORITHMS, type KeyAlgorithm, type SignatureScheme, decryptPrivateKeyPem, encryptPrivateKeyPem, generateKeyPair, generateKeyPairNow, isKeyAlgorithm, jwkThumbprint, keyAlgorithmOf, plainPrivateKeyPem, signatureSchemeFor, spkiOf, toPrivateCryptoKey } from "./keys.js";
export { issuePkcs12, pemCertificatesToDer } from "./pkcs12.js";
