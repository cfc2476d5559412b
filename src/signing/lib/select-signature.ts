import { isInnerList, parseDictionary, type Dictionary, type InnerList } from "structured-headers";
import { repeatedDictionaryKey } from "./dictionary-keys.js";
import { isFieldText, trimOws } from "./field-text.js";
import type { MessageView } from "./message-view.js";
import { excerpt, fail, ok, type Result } from "./result.js";

/** Cap on the combined Signature-Input or Signature value: parsing cost stays bounded. */
export const MAX_SIGNATURE_FIELD_CHARS = 8192;

export interface SelectedSignature {
  label: string;
  /** Covered components and signature parameters, as parsed from Signature-Input. */
  input: InnerList;
  signature: Uint8Array;
}

/** Parse every line of a Dictionary field; undefined when the field is absent. */
function readDictionaryField(view: MessageView, name: string, rejectRepeatedKeys: boolean): Result<Dictionary | undefined> {
  const lines = view.header(name);
  if (lines === undefined || lines.length === 0) return ok(undefined);
  let total = 0;
  for (const line of lines) {
    total += line.length + 2;
    if (total > MAX_SIGNATURE_FIELD_CHARS) return fail("bad-request", `${name} is too long`);
    if (!isFieldText(line)) return fail("bad-request", `${name} holds non-ASCII or control characters`);
  }
  const value = lines.map(trimOws).join(", ");
  const repeated = rejectRepeatedKeys ? repeatedDictionaryKey(value) : undefined;
  if (repeated !== undefined) return fail("bad-request", `${name} names ${excerpt(repeated)} more than once`);
  try {
    return ok(parseDictionary(value));
  } catch {
    return fail("bad-request", `${name} is not a valid Dictionary`);
  }
}

/** How the verifier picks one signature among several. */
export interface SignatureChoice {
  tag: string | undefined;
  label: string | undefined;
  /**
   * Refuse a label named twice (RFC 9651 parsers keep the last member, so the signature
   * checked could differ from the one an intermediary inspected).
   */
  rejectRepeatedLabels: boolean;
}

/**
 * Find the signature to verify (RFC 9421 §3.2 step 1): the one whose `tag` parameter equals
 * `tag` (and whose label is `label`, when given), or, with neither given, the only one.
 * Several candidates are refused rather than guessed between; every Signature-Input member
 * must be an Inner List.
 */
export function selectSignature(view: MessageView, { tag, label: wanted, rejectRepeatedLabels }: SignatureChoice): Result<SelectedSignature> {
  const inputs = readDictionaryField(view, "signature-input", rejectRepeatedLabels);
  if (!inputs.ok) return inputs;
  const signatures = readDictionaryField(view, "signature", rejectRepeatedLabels);
  if (!signatures.ok) return signatures;
  if (inputs.value === undefined || signatures.value === undefined) {
    return fail("signature-missing", "Signature-Input or Signature is absent");
  }
  const candidates: [string, InnerList][] = [];
  for (const [label, member] of inputs.value) {
    if (!isInnerList(member)) return fail("bad-request", `Signature-Input member ${excerpt(label)} is not an Inner List`);
    if ((wanted === undefined || label === wanted) && (tag === undefined || member[1].get("tag") === tag)) {
      candidates.push([label, member]);
    }
  }
  const chosen = candidates[0];
  if (chosen === undefined) {
    return fail("signature-missing", "no signature has the expected tag or label");
  }
  if (candidates.length > 1) {
    return tag === undefined && wanted === undefined
      ? fail("signature-missing", "several signatures and no tag to choose one")
      : fail("bad-request", "several signatures have the expected tag");
  }
  const [label, input] = chosen;
  const value = signatures.value.get(label);
  if (value === undefined) return fail("signature-missing", `Signature has no member ${excerpt(label)}`);
  if (isInnerList(value) || !(value[0] instanceof ArrayBuffer)) {
    return fail("bad-request", `Signature member ${excerpt(label)} is not a Byte Sequence`);
  }
  return ok({ label, input, signature: new Uint8Array(value[0]) });
}
