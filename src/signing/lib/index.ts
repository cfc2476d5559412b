/** The private parts of signing/ (the jose pattern): its files use this folder through here; nothing outside signing/ does. */
export { checkFreshness } from "./check-freshness.js";
export { type RequiredParameter, checkProfile } from "./check-profile.js";
export { type ComponentIdentifier, componentFromItem, componentFromString } from "./component-identifier.js";
export { createSignatureBase } from "./create-base.js";
export { signBase, verifyBase } from "./crypto-primitives.js";
export { repeatedDictionaryKey } from "./dictionary-keys.js";
export { isFieldText, trimOws } from "./field-text.js";
export { MessageView } from "./message-view.js";
export { type Result, fail, ok } from "./result.js";
export { MAX_SIGNATURE_FIELD_CHARS, selectSignature } from "./select-signature.js";
export { type SignatureParameters, readSignatureParameters } from "./signature-params.js";
export { serializeInnerList, serializeItem, serializeParameters } from "./serialize.js";
