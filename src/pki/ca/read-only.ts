/**
 * The rules of a PKI directory Postern may not write (`pki.readOnly`: a pod's Secret). It must
 * hold every file of POD_PKI_FILES; a built-in certificate that a writable start would
 * re-issue is kept with a warning while it is still valid and merely expires soon (the
 * operator renews it where the keys are), and refused otherwise, naming the file and the fix.
 * Nothing here writes: the point is that a read-only start fails with the file's name, never
 * with an EACCES from halfway through a write.
 */
import { join } from "node:path";
import { PosternError } from "../../errors.js";
import { POD_PKI_FILES, exists } from "./ca-files.js";
import type { IssueReason } from "./bootstrap.js";

/** How to put a stale built-in right: where the keys are, never in the pod. */
const RENEW_HINT =
  "renew it where the PKI directory is writable (postern pki reissue --only server, with the bootstrap's configuration) and replace the Secret";

/** @throws PosternError `not-found` naming every file of POD_PKI_FILES that `dir` lacks. */
export async function assertPodFiles(dir: string): Promise<void> {
  const missing: string[] = [];
  for (const name of POD_PKI_FILES) if (!(await exists(join(dir, name)))) missing.push(name);
  if (missing.length > 0) {
    throw new PosternError(
      "not-found",
      `pki.readOnly: the PKI directory ${dir} lacks ${missing.join(", ")}; a gateway pod needs exactly ${POD_PKI_FILES.join(", ")} (deploy/README.md, "Kubernetes")`,
    );
  }
}

/**
 * What a read-only start does with a built-in certificate a writable one would re-issue for
 * `reason`: returns the warning to log when it may be kept (expiring, still valid).
 * @throws PosternError `conflict` naming `path` otherwise (missing, expired, another CA, a key
 * that does not match, a configured host name it lacks).
 */
export function keepReadOnlyLeaf(input: { path: string; reason: IssueReason; notAfterMs: number | undefined; nowMs: number }): string {
  const { path, reason, notAfterMs, nowMs } = input;
  if (reason === "expiring" && notAfterMs !== undefined && notAfterMs > nowMs) {
    const days = Math.floor((notAfterMs - nowMs) / 86_400_000);
    return `pki.readOnly: ${path} expires ${new Date(notAfterMs).toISOString()} (in ${days} day(s)); ${RENEW_HINT}`;
  }
  const why: Record<IssueReason, string> = {
    missing: "is missing (or its key is)",
    expiring: `has expired${notAfterMs !== undefined ? ` (${new Date(notAfterMs).toISOString()})` : ""}`,
    "key-mismatch": "does not match its key",
    "other-ca": "was not issued by this directory's issuing CA",
    hostnames: "lacks a host name listed in pki.hostnames",
    bootstrap: "would be created by a first start",
    requested: "was asked to be re-issued",
  };
  throw new PosternError("conflict", `pki.readOnly: ${path} ${why[reason]}, and Postern may not write the PKI directory: ${RENEW_HINT}`);
}
