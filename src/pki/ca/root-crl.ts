/**
 * The root CA's CRL file (`root-ca.crl`): signed when the CA is created, and again only when
 * the root key is at hand and the CRL is missing, damaged, signed by another root, or within
 * 30 days of its nextUpdate. With the root key offline the file is used as it is, so every
 * replica publishes the same bytes. Planning writes nothing.
 */
import type { KeyObject } from "node:crypto";
import { PUBLIC_MODE, exists, pkiPaths, readText, type PlannedFile } from "./ca-files.js";
import { buildRootCrl } from "../status/index.js";
import { TAG, readOne, x509 } from "../der/index.js";
import { toPrivateCryptoKey } from "../keys/index.js";

const RENEW_BEFORE_MS = 30 * 86_400_000;
const CRL_NUMBER_OID = "2.5.29.20";

export interface RootCrlPlan {
  /** The root CRL to publish; undefined when there is none and no root key to sign one. */
  pem: string | undefined;
  /** Set when a new one must be written. */
  write?: PlannedFile;
  /** Why the published one is missing or old, for a warning. */
  problem?: string;
}

/** Decides which root CRL to publish, signing a new one only when needed and possible. */
export async function planRootCrl(input: { dir: string; root: x509.X509Certificate; rootKey: KeyObject | undefined; nowMs: number }): Promise<RootCrlPlan> {
  const path = pkiPaths(input.dir).rootCrl;
  const existing = (await exists(path)) ? await readText(path) : undefined;
  const facts = existing ? await inspect(existing, input.root) : undefined;
  const fine = facts?.valid === true && facts.nextUpdateMs - input.nowMs > RENEW_BEFORE_MS;
  if (fine || !input.rootKey) {
    if (facts?.valid) return { pem: existing, ...(fine ? {} : { problem: `${path} expires ${new Date(facts.nextUpdateMs).toISOString()}: re-sign it where the root key is` }) };
    return { pem: undefined, problem: existing ? `${path} is not a CRL of this root` : `no ${path} and no root key to sign one` };
  }
  const crlNumber = [BigInt(Math.floor(input.nowMs / 1000)), (facts?.crlNumber ?? 0n) + 1n].reduce((a, b) => (a > b ? a : b));
  const built = buildRootCrl({ root: { cert: input.root, privateKey: await toPrivateCryptoKey(input.rootKey) }, crlNumber, nowMs: input.nowMs });
  return { pem: built.pem, write: { path, data: built.pem, mode: PUBLIC_MODE } };
}

async function inspect(pem: string, root: x509.X509Certificate): Promise<{ valid: boolean; nextUpdateMs: number; crlNumber: bigint }> {
  try {
    const crl = new x509.X509Crl(pem);
    const valid = crl.issuer === root.subject && (await crl.verify({ publicKey: await root.publicKey.export() }));
    const ext = crl.extensions.find((e) => e.type === CRL_NUMBER_OID);
    const n = ext ? BigInt(`0x${Buffer.from(readOne(new Uint8Array(ext.value), TAG.integer).content).toString("hex") || "0"}`) : 0n;
    return { valid, nextUpdateMs: crl.nextUpdate?.getTime() ?? 0, crlNumber: n };
  } catch {
    return { valid: false, nextUpdateMs: 0, crlNumber: 0n };
  }
}
