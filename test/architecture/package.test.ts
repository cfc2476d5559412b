import t from "tap";
import { runTool } from "../helpers/process.js";

t.test("the published package holds the build, the config and the license, not the tests", async (t) => {
  const packed = await runTool("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"]);
  t.equal(packed.code, 0, packed.stderr);
  const files = (JSON.parse(packed.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
  for (const wanted of ["LICENSE", "README.md", "package.json", "dist/cli/main.js", "dist/index.js", "config/postern.yaml", "config/postern.schema.json"]) {
    t.ok(files.includes(wanted), wanted);
  }
  t.same(files.filter((f) => /^(test|bench|deploy|src|\.ci)\//.test(f)), [], "no tests, benches, deploy files, sources or CI");
});
