/** Visible ASCII, SP and HTAB: what a field value may hold inside a signature base. */
const FIELD_TEXT = /^[\t\x20-\x7e]*$/;

/** True when `value` can appear in a signature base or a structured field without ;bs. */
export function isFieldText(value: string): boolean {
  return FIELD_TEXT.test(value);
}

/** Strip leading and trailing SP / HTAB (RFC 9110 OWS), nothing else. */
export function trimOws(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && (value[start] === " " || value[start] === "\t")) start++;
  while (end > start && (value[end - 1] === " " || value[end - 1] === "\t")) end--;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}

/** Replace obsolete line folding (OWS CRLF RWS) with one space, RFC 9421 §2.1 step 3. */
export function unfoldObsFold(value: string): string {
  return value.includes("\n") ? value.replace(/[ \t]*\r?\n[ \t]+/g, " ") : value;
}
