import type { HttpMessageParts } from "../http-message.js";

type Lines = ReadonlyArray<readonly [name: string, value: string]>;

function indexLines(lines: Lines | undefined): Map<string, string[]> {
  const index = new Map<string, string[]>();
  if (lines === undefined) return index;
  for (const [name, value] of lines) {
    const key = name.toLowerCase();
    const values = index.get(key);
    if (values === undefined) index.set(key, [value]);
    else values.push(value);
  }
  return index;
}

/**
 * One message with its header and trailer lines grouped by lowercased name (wire order
 * kept within a name). Indexed lazily and once, since a base reads several fields.
 */
export class MessageView {
  readonly parts: HttpMessageParts;
  #headers: Map<string, string[]> | undefined;
  #trailers: Map<string, string[]> | undefined;

  constructor(parts: HttpMessageParts) {
    this.parts = parts;
  }

  get isResponse(): boolean {
    return this.parts.status !== undefined;
  }

  /** Every line of header `lowerName`, in wire order; undefined when absent. */
  header(lowerName: string): readonly string[] | undefined {
    this.#headers ??= indexLines(this.parts.headers);
    return this.#headers.get(lowerName);
  }

  /** Every line of trailer `lowerName`, in wire order; undefined when absent. */
  trailer(lowerName: string): readonly string[] | undefined {
    this.#trailers ??= indexLines(this.parts.trailers);
    return this.#trailers.get(lowerName);
  }
}
