/** A mistake in the command line: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The `--json` line of a command's usage. */
export const JSON_USAGE = "  --json               print one JSON document (stable field names) instead of text";

/** Prints one JSON document on stdout: what `--json` gives every command that prints data. Errors stay on stderr. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}
