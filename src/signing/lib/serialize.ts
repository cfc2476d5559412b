/**
 * RFC 9651 serialization of the Inner Lists, Items and Parameters a signature holds, with the
 * same output as `structured-headers` and a quicker path for what signatures are made of:
 * plain Strings (printable ASCII without `"` or `\`), Integers, Booleans and valid keys.
 * Anything else (an escape, a Decimal, a Token, a Byte Sequence, a Date, a bad key or value)
 * goes to the library, which serializes it or throws its SerializeError. Every request's
 * Signature-Input is re-serialized once and each of its components once more, and the
 * library's generic path costs more than the rest of reading the signature.
 */
import {
  serializeInnerList as libraryInnerList,
  serializeItem as libraryItem,
  serializeParameters as libraryParameters,
  type BareItem,
  type InnerList,
  type Item,
  type Parameters,
} from "structured-headers";

/** Printable ASCII except `"` and `\`: a String that needs no escape. */
const PLAIN_STRING = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
const KEY = /^[a-z*][a-z0-9_\-.*]*$/;
const MAX_INTEGER = 999_999_999_999_999;

/** A bare item the quick path can write; undefined sends the caller to the library. */
function quickBareItem(value: BareItem): string | undefined {
  if (typeof value === "string") return PLAIN_STRING.test(value) ? `"${value}"` : undefined;
  if (typeof value === "number") return Number.isInteger(value) && Math.abs(value) <= MAX_INTEGER ? String(value) : undefined;
  if (typeof value === "boolean") return value ? "?1" : "?0";
  return undefined;
}

function quickParameters(params: Parameters): string | undefined {
  let out = "";
  for (const [key, value] of params) {
    if (!KEY.test(key)) return undefined;
    out += ";" + key;
    if (value === true) continue;
    const text = quickBareItem(value);
    if (text === undefined) return undefined;
    out += "=" + text;
  }
  return out;
}

function quickItem(item: Item): string | undefined {
  const value = quickBareItem(item[0]);
  if (value === undefined) return undefined;
  const params = quickParameters(item[1]);
  return params === undefined ? undefined : value + params;
}

/** As `structured-headers`' serializeParameters. @throws its SerializeError on what it refuses. */
export function serializeParameters(params: Parameters): string {
  return quickParameters(params) ?? libraryParameters(params);
}

/** As `structured-headers`' serializeItem. @throws its SerializeError on what it refuses. */
export function serializeItem(item: Item): string {
  return quickItem(item) ?? libraryItem(item);
}

/** As `structured-headers`' serializeInnerList. @throws its SerializeError on what it refuses. */
export function serializeInnerList(list: InnerList): string {
  let out = "(";
  for (let i = 0; i < list[0].length; i++) {
    const text = quickItem(list[0][i]!);
    if (text === undefined) return libraryInnerList(list);
    out += i === 0 ? text : " " + text;
  }
  const params = quickParameters(list[1]);
  return params === undefined ? libraryInnerList(list) : out + ")" + params;
}
