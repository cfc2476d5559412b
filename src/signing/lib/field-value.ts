import {
  parseDictionary,
  parseItem,
  parseList,
  serializeDictionary,
  serializeInnerList,
  serializeItem,
  serializeList,
  isInnerList,
} from "structured-headers";
import type { ComponentIdentifier } from "./component-identifier.js";
import { isFieldText, trimOws, unfoldObsFold } from "./field-text.js";
import type { MessageView } from "./message-view.js";
import { fail, ok, type Result } from "./result.js";

type StructuredType = "dictionary" | "list" | "item";

/**
 * Structured fields whose type is known. Any other field with `;sf` is read as a
 * Dictionary if it parses as one, else a List, else an Item, as the RFC examples do.
 */
const STRUCTURED_FIELDS: ReadonlyMap<string, StructuredType> = new Map<string, StructuredType>([
  ["accept-signature", "dictionary"],
  ["signature-input", "dictionary"],
  ["signature", "dictionary"],
  ["content-digest", "dictionary"],
  ["repr-digest", "dictionary"],
  ["want-content-digest", "dictionary"],
  ["want-repr-digest", "dictionary"],
  ["priority", "dictionary"],
  ["cdn-cache-control", "dictionary"],
  ["cache-status", "list"],
  ["proxy-status", "list"],
  ["client-cert-chain", "list"],
  ["client-cert", "item"],
]);

function reserialize(name: string, value: string): string | undefined {
  const known = STRUCTURED_FIELDS.get(name);
  const order: readonly StructuredType[] = known ? [known] : ["dictionary", "list", "item"];
  for (const type of order) {
    try {
      if (type === "dictionary") return serializeDictionary(parseDictionary(value));
      if (type === "list") return serializeList(parseList(value));
      return serializeItem(parseItem(value));
    } catch {
      // Not this type: try the next one.
    }
  }
  return undefined;
}

function dictionaryMember(value: string, key: string): Result<string | undefined> {
  try {
    const member = parseDictionary(value).get(key);
    if (member === undefined) return ok(undefined);
    return ok(isInnerList(member) ? serializeInnerList(member) : serializeItem(member));
  } catch {
    return fail("bad-request", "a covered field is not a valid Dictionary");
  }
}

/**
 * The canonical value of a covered HTTP field (RFC 9421 §2.1): each line trimmed, obs-fold
 * replaced by a space, lines joined with ", "; then `;sf`, `;key` or `;bs` applied. An
 * absent field or member is "signature-invalid"; duplicate lines when `rejectDuplicates`,
 * non-ASCII or control characters and unparseable structured values are "bad-request".
 */
export function resolveFieldValue(
  view: MessageView,
  id: ComponentIdentifier,
  rejectDuplicates: boolean,
): Result<string> {
  const lines = id.tr ? view.trailer(id.name) : view.header(id.name);
  if (lines === undefined || lines.length === 0) {
    return fail("signature-invalid", `covered field ${id.name} is absent`);
  }
  if (rejectDuplicates && lines.length > 1) {
    return fail("bad-request", `covered field ${id.name} is sent on ${lines.length} lines`);
  }
  if (id.bs) {
    const wrapped: string[] = [];
    for (const line of lines) {
      // Node decodes header bytes as latin1, so every char is one byte; wider ones are not.
      if (/[^\x00-\xff]/.test(line)) return fail("bad-request", `field ${id.name} is not a byte string`);
      wrapped.push(`:${Buffer.from(trimOws(line), "latin1").toString("base64")}:`);
    }
    return ok(wrapped.join(", "));
  }
  const value = lines.length === 1 ? unfoldObsFold(trimOws(lines[0]!)) : lines.map((line) => unfoldObsFold(trimOws(line))).join(", ");
  if (!isFieldText(value)) {
    return fail("bad-request", `covered field ${id.name} holds non-ASCII or control characters`);
  }
  if (id.key !== undefined) {
    const member = dictionaryMember(value, id.key);
    if (!member.ok) return member;
    if (member.value === undefined) return fail("signature-invalid", `member ${id.key} of ${id.name} is absent`);
    return ok(member.value);
  }
  if (id.sf) {
    const strict = reserialize(id.name, value);
    return strict === undefined ? fail("bad-request", `covered field ${id.name} is not a structured field`) : ok(strict);
  }
  return ok(value);
}
