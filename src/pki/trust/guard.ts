/**
 * Checks the store against the trust ledger and says whether the PKI's trust state is intact.
 * The store must hold every certificate the ledger recorded (minus those an operator accepted
 * as gone) and every revocation. A revocation the ledger has but the store lacks, for a
 * certificate the store still holds, is a revocation interrupted before it reached the store
 * (kill -9): it is completed here. A certificate the store lacks means the store lost data
 * (an emptied or rolled-back Redis): the state is `lost` and Postern fails closed
 * (`pki-state-lost`) until `postern pki restore` brings it back. Nothing here trusts the
 * store to say what is missing from it.
 */
import { PosternError } from "../../errors.js";
import type { AuditLog } from "../audit/index.js";
import type { PkiStore, RevokedEntry } from "../store/index.js";
import type { TrustLedger } from "./ledger.js";

/** What a check found. */
export type TrustStatus =
  | { intact: true; checkedAtMs: number }
  | {
      intact: false;
      checkedAtMs: number;
      /** Recorded certificates the store no longer has. */
      lostCertificates: string[];
      /** Recorded revocations whose certificate the store no longer has. */
      lostRevocations: RevokedEntry[];
      /** One sentence for logs and errors, naming what was lost and where. */
      summary: string;
    };

export interface TrustGuardOptions {
  ledger: TrustLedger;
  store: Pick<PkiStore, "missingCertificates" | "listRevoked" | "revoke" | "counts">;
  audit: Pick<AuditLog, "append">;
  /** Names the store in messages, e.g. "Redis redis://10.0.0.5:6379 (prefix postern:{pki}:)". */
  storeName: string;
  now: () => number;
  /** Called when the status flips (intact -> lost or back). */
  onChange?: (status: TrustStatus) => void;
}

/** Holds the latest verdict; `check()` refreshes it, `assertIntact()` enforces it. */
export class TrustGuard {
  readonly #o: TrustGuardOptions;
  #status: TrustStatus;
  #running: Promise<TrustStatus> | undefined;

  constructor(o: TrustGuardOptions) {
    this.#o = o;
    this.#status = { intact: true, checkedAtMs: 0 };
  }

  get status(): TrustStatus {
    return this.#status;
  }

  get lost(): boolean {
    return !this.#status.intact;
  }

  /** Throws `pki-state-lost` (503) while the state is lost: nothing may be issued or trusted on the store's word. */
  assertIntact(): void {
    const s = this.#status;
    if (!s.intact) throw new PosternError("pki-state-lost", s.summary, { extensions: { retryAfterSeconds: 30 } });
  }

  /** A full comparison (concurrent callers share one run). */
  check(): Promise<TrustStatus> {
    this.#running ??= this.#check().finally(() => (this.#running = undefined));
    return this.#running;
  }

  /**
   * The cheap check for a timer: two counts. Runs the full check when the store holds fewer
   * certificates or revocations than the ledger recorded, or while the state is lost.
   */
  async quickCheck(): Promise<TrustStatus> {
    await this.#o.ledger.refresh();
    const state = this.#o.ledger.state;
    const counts = await this.#o.store.counts();
    const expected = state.expectedCertificates().length;
    const revocations = [...state.revocations.keys()].filter((s) => !state.accepted.has(s)).length;
    if (this.lost || counts.certificates < expected || counts.revoked < revocations) return this.check();
    return this.#status;
  }

  async #check(): Promise<TrustStatus> {
    const { ledger, store } = this.#o;
    await ledger.refresh();
    const state = ledger.state;
    const wanted = new Set(state.expectedCertificates());
    for (const serial of state.revocations.keys()) if (!state.accepted.has(serial)) wanted.add(serial);
    const missing = new Set(await store.missingCertificates([...wanted]));
    const revokedInStore = new Set((await store.listRevoked()).map((e) => e.serial));
    const lostRevocations: RevokedEntry[] = [];
    for (const r of state.revocations.values()) {
      if (state.accepted.has(r.serial) || revokedInStore.has(r.serial)) continue;
      if (missing.has(r.serial)) {
        lostRevocations.push({ serial: r.serial, reason: r.reason, revokedAtMs: r.revokedAtMs });
        continue;
      }
      // Written ahead to the ledger, never reached the store: finish it.
      await store.revoke(r.serial, r.reason, r.revokedAtMs);
      await this.#o.audit.append({ actor: "postern", action: "certificate.revoke.completed", subject: r.serial, details: { reason: r.reason, revokedAtMs: r.revokedAtMs, note: "recorded in the trust ledger, missing from the store" } });
    }
    const lostCertificates = [...missing].filter((s) => state.certificates.has(s) && !state.accepted.has(s));
    const now = this.#o.now();
    const next: TrustStatus =
      lostCertificates.length === 0 && lostRevocations.length === 0
        ? { intact: true, checkedAtMs: now }
        : { intact: false, checkedAtMs: now, lostCertificates, lostRevocations, summary: this.#summary(lostCertificates, lostRevocations) };
    const flipped = next.intact !== this.#status.intact;
    this.#status = next;
    if (flipped) this.#o.onChange?.(next);
    return next;
  }

  #summary(certs: readonly string[], revocations: readonly RevokedEntry[]): string {
    const examples = revocations.slice(0, 3).map((r) => `${r.serial} (${r.reason})`).join(", ");
    return (
      `PKI state lost: ${this.#o.storeName} lacks ${certs.length} certificate(s) and ${revocations.length} revocation(s) recorded in the trust ledger ${this.#o.ledger.path}` +
      (examples ? `, e.g. revoked ${examples}` : certs.length > 0 ? `, e.g. ${certs.slice(0, 3).join(", ")}` : "") +
      `. Revoked certificates stay refused; issuing, revoking and the data plane are refused until "postern pki restore --file <backup>"`
    );
  }
}
