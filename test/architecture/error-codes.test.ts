import { readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { ERROR_CODES } from "../../src/errors.js";
import { ROOT } from "../helpers/process.js";

t.test("every error code is documented in the README's table with its status", async (t) => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  for (const [code, { status }] of Object.entries(ERROR_CODES)) {
    t.match(readme, new RegExp(`\\| \`${code}\` \\| ${status} \\|`), `${code} (${status}) is in the README`);
  }
});
