/**
 * Worker thread for the pki bench's pool: loads the CA once (loadCa), then certifies every CSR
 * DER posted to it with issueFromCsrNow under the default client profile and posts the
 * certificate DERs back (transferred, not copied).
 */
import { parentPort, workerData } from "node:worker_threads";
import { loadCa } from "../src/pki/ca/ca.js";
import { issueFromCsrNow } from "../src/pki/issue/csr.js";
import { DEFAULT_CLIENT_PROFILE } from "../src/pki/issue/profile.js";

export interface PkiWorkerInit {
  dir: string;
  passphrase: string;
}

/** A batch of CSR DERs to certify. */
export interface PkiWorkerRequest {
  id: number;
  csrs: Uint8Array[];
}

export type PkiWorkerReply =
  | { kind: "ready" }
  | { kind: "issued"; id: number; ders: Uint8Array[] }
  | { kind: "failed"; id: number; error: string };

const port = parentPort;
if (!port) throw new Error("bench/pki-worker.ts runs only as a worker thread");
const init = workerData as PkiWorkerInit;
const ca = await loadCa(init.dir, init.passphrase);

port.on("message", (request: PkiWorkerRequest) => {
  try {
    const ders = request.csrs.map((csrPem) => issueFromCsrNow({ issuer: ca.issuer, csrPem, profile: DEFAULT_CLIENT_PROFILE }).der);
    const reply: PkiWorkerReply = { kind: "issued", id: request.id, ders };
    port.postMessage(reply, ders.map((d) => d.buffer));
  } catch (error) {
    const reply: PkiWorkerReply = { kind: "failed", id: request.id, error: String(error) };
    port.postMessage(reply);
  }
});
const ready: PkiWorkerReply = { kind: "ready" };
port.postMessage(ready);
