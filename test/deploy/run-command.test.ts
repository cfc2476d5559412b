import t from "tap";
import { runCommand } from "../helpers/docker.js";

t.test("a command that exits without reading its input: its exit code, no EPIPE thrown at the test", async (t) => {
  // A megabyte is more than a pipe holds, so the write is still going when sh exits: EPIPE every time.
  const result = await runCommand("sh", ["-c", "echo gone >&2; exit 3"], { input: "x".repeat(1 << 20) });
  t.equal(result.code, 3);
  t.equal(result.stderr, "gone\n");
});

t.test("a command that reads its input gets it; a missing one resolves -1", async (t) => {
  t.same(await runCommand("sh", ["-c", "wc -c"], { input: "12345" }), { code: 0, stdout: "5\n", stderr: "" });
  const missing = await runCommand("postern-no-such-command", []);
  t.equal(missing.code, -1);
  t.match(missing.stderr, /ENOENT/);
});
