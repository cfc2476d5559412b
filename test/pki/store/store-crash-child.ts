/**
 * Child process for the kill -9 tests, killed by its parent mid-write. Mode `store`: writes
 * certificates and revocations to a FileStore and prints each acknowledged serial. Mode
 * `atomic`: rewrites one file with writeFileAtomic and prints each acknowledged version.
 */
import { join } from "node:path";
import { writeFileAtomic } from "../../../src/storage/atomic-file.js";
import { FileStore } from "../../../src/pki/store/file-store.js";
import { certRecord } from "./store-contract.js";

const [mode, dir] = process.argv.slice(2);
if (!dir) throw new Error("usage: store-crash-child store|atomic <dir>");
process.stdout.write("ready\n");
if (mode === "atomic") {
  for (let i = 0; ; i++) {
    await writeFileAtomic(join(dir, "state.txt"), `version ${i}\n${"x".repeat(200_000)}\nend ${i}\n`);
    process.stdout.write(`version ${i}\n`);
  }
}
const store = await FileStore.open(dir, { compactMinLines: 300 });
const hex = (i: number) => (0x100000 + i).toString(16);
for (let i = 0; ; i++) {
  // Two writes in flight at once, so group commit and compaction are both exercised.
  await Promise.all([
    store.putCertificate(certRecord(hex(i))).then(() => process.stdout.write(`cert ${hex(i)}\n`)),
    i > 0
      ? store.revoke(hex(i - 1), "keyCompromise", i).then(() => process.stdout.write(`revoked ${hex(i - 1)}\n`))
      : Promise.resolve(),
  ]);
}
