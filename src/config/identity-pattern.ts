/** An identity pattern from the config: exact, or a prefix when it ends with `*`. */
export function matchesIdentity(id: string, pattern: string): boolean {
  return pattern.endsWith("*") ? id.startsWith(pattern.slice(0, -1)) : id === pattern;
}
