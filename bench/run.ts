/**
 * `npm run bench`: costs against baselines measured in the same run, printed as ratios.
 * Sections: signing | sealed | gateway | redis | pki | cli (all by default; pass names to choose); flags in options.ts.
 */
import { benchCli } from "./cli.js";
import { benchGateway } from "./gateway.js";
import { parseBenchArgs, USAGE, type BenchArgs } from "./options.js";
import { benchPki } from "./pki.js";
import { benchRedis } from "./redis.js";
import { benchSealed } from "./sealed.js";
import { benchSigning } from "./signing.js";

let args: BenchArgs;
try {
  args = parseBenchArgs(process.argv.slice(2), process.env);
} catch (error) {
  process.stderr.write(`bench: ${(error as Error).message}\n${USAGE}\n`);
  process.exit(2);
}

const sections: Record<string, () => Promise<void>> = {
  signing: benchSigning,
  sealed: () => benchSealed(args.gateway.bodyBytes),
  gateway: () => benchGateway(args.gateway),
  redis: () => benchRedis(args.gateway.bodyBytes),
  pki: benchPki,
  cli: benchCli,
};
for (const [name, run] of Object.entries(sections)) {
  if (args.sections.includes(name as BenchArgs["sections"][number])) await run();
}
process.stdout.write("\n");
