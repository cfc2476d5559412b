/**
 * `npm run bench`: throughput against baselines measured in the same run, printed as ratios.
 * Sections: signing | gateway | pki (all by default; pass names to choose).
 */
import { benchGateway } from "./gateway.js";
import { benchPki } from "./pki.js";
import { benchSigning } from "./signing.js";

const sections: Record<string, () => Promise<void>> = { signing: benchSigning, gateway: benchGateway, pki: benchPki };
const chosen = process.argv.slice(2);
for (const [name, run] of Object.entries(sections)) {
  if (chosen.length === 0 || chosen.includes(name)) await run();
}
process.stdout.write("\n");
