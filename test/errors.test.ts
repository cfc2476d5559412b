import t from "tap";
import { ERROR_CODES, PosternError } from "../src/errors.js";

t.test("every code maps to an HTTP status", async (t) => {
  for (const [code, def] of Object.entries(ERROR_CODES)) {
    t.ok(def.status >= 400 && def.status < 600, code);
  }
  const e = new PosternError("replayed");
  t.equal(e.toProblem().status, 409);
});
