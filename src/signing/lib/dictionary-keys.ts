/**
 * The member keys of a Structured Field Dictionary (RFC 9651 §3.2), in order, as they appear
 * on the wire. `structured-headers` keeps only the last member when a key repeats
 * (`sha-256=:a:, sha-256=:b:`), so a check of "every digest" or "the signature labelled sig1"
 * could read another member than the sender meant: callers refuse a repeated key with this.
 * It only splits top-level members (outside strings, byte sequences and inner lists); the
 * parser still validates the whole field.
 */
export function dictionaryKeys(value: string): string[] {
  const keys: string[] = [];
  let memberStart = true;
  let depth = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (memberStart) {
      if (c === " " || c === "\t") continue;
      const key = /^[a-z*][a-z0-9_.*-]*/.exec(value.slice(i, i + 64));
      if (key) keys.push(key[0]);
      memberStart = false;
    }
    if (c === '"') {
      // A String: skip to its closing quote, over escaped characters.
      for (i++; i < value.length && value[i] !== '"'; i++) if (value[i] === "\\") i++;
    } else if (c === ":" && (value[i - 1] === "=" || value[i - 1] === "(" || value[i - 1] === " ")) {
      // A Byte Sequence starts only where an item does; a Token may hold ":" inside.
      const end = value.indexOf(":", i + 1);
      i = end < 0 ? value.length : end;
    } else if (c === "(") {
      depth++;
    } else if (c === ")") {
      depth = Math.max(0, depth - 1);
    } else if (c === "," && depth === 0) {
      memberStart = true;
    }
  }
  return keys;
}

/** The first key that occurs twice in a Dictionary field value, or undefined. */
export function repeatedDictionaryKey(value: string): string | undefined {
  const seen = new Set<string>();
  for (const key of dictionaryKeys(value)) {
    if (seen.has(key)) return key;
    seen.add(key);
  }
  return undefined;
}
