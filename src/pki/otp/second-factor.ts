/**
 * The admin's second factor: a TOTP code (RFC 6238) on top of the admin certificate for the
 * actions that change the PKI. A stolen admin key alone can then read but not issue, revoke
 * or mint tokens. Refusals are typed: no code (`otp-required`, 401), a wrong one
 * (`otp-invalid`, 403), one already spent (`otp-reused`, 403), too many failures
 * (`rate-limited`, 429, even for a right code, so guessing stops). Every use and refusal is in
 * the audit log.
 */
import { randomBytes } from "node:crypto";
import { PosternError } from "../../errors.js";
import type { AuditLog } from "../audit/index.js";
import { type OtpState, readOtpState, updateOtpState } from "./otp-file.js";
import { deriveSecretKey, openSecret, sealSecret } from "./secret-box.js";
import { matchTotp, otpauthUri } from "./totp.js";

/** The admin actions a second factor can guard (config `admin.otp.actions`). */
export const SECOND_FACTOR_ACTIONS = ["token", "issue", "revoke", "connection-close"] as const;
export type SecondFactorAction = (typeof SECOND_FACTOR_ACTIONS)[number];

export interface SecondFactorPolicy {
  /** `auto`: required once any admin has enrolled; `on`: always (an admin without one is refused); `off`: never. */
  mode: "auto" | "on" | "off";
  actions: readonly SecondFactorAction[];
  /** Refused codes per admin within `failureWindowSeconds` before every code is refused. */
  maxFailures: number;
  failureWindowSeconds: number;
}

export interface SecondFactorOptions {
  /** `<pki.stateDir>/admin-otp.json`. */
  path: string;
  passphrase: string;
  policy: SecondFactorPolicy;
  audit?: AuditLog;
  now?: () => number;
}

/** One enrolled admin, as `list` shows them (never the secret). */
export interface EnrolledAdmin {
  identity: string;
  enrolledAtMs: number;
}

/** Enrollment, the policy and code checks over one `admin-otp.json`. */
export class AdminSecondFactor {
  readonly #o: SecondFactorOptions;
  readonly #now: () => number;
  /** scrypt is slow on purpose: one derivation per salt and process. */
  readonly #keys = new Map<string, Buffer>();

  constructor(options: SecondFactorOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  get policy(): SecondFactorPolicy {
    return this.#o.policy;
  }

  /** Whether `action` needs a code now (with `auto`, once anyone has enrolled). */
  async required(action: SecondFactorAction): Promise<boolean> {
    const { mode, actions } = this.#o.policy;
    if (mode === "off" || !actions.includes(action)) return false;
    if (mode === "on") return true;
    const state = await readOtpState(this.#o.path);
    return state !== undefined && Object.keys(state.admins).length > 0;
  }

  /**
   * Checks `code` for `identity` when `action` needs one; resolves when the action may go on.
   * An accepted code's time step is spent before this resolves, so the same code (or an older
   * one) is refused on every worker and replica sharing the state directory.
   */
  async verify(input: { identity: string; code: string | undefined; action: SecondFactorAction; subject: string }): Promise<void> {
    if (!(await this.required(input.action))) return;
    const { identity, action, subject } = input;
    const nowMs = this.#now();
    const windowMs = this.#o.policy.failureWindowSeconds * 1000;
    const refusal = await updateOtpState<{ code: "otp-required" | "otp-invalid" | "otp-reused" | "rate-limited"; detail: string } | { step: number }>(this.#o.path, async (state) => {
      const entry = state?.admins[identity];
      if (!state || !entry) return { result: { code: "otp-required", detail: `${identity} has no second factor: enroll with postern admin otp enroll --id ${identity}` } };
      const failures = (entry.failuresMs ?? []).filter((at) => at > nowMs - windowMs);
      if (failures.length >= this.#o.policy.maxFailures) {
        const retryAfterSeconds = Math.max(1, Math.ceil((failures[0]! + windowMs - nowMs) / 1000));
        return { result: { code: "rate-limited", detail: `too many refused one-time codes; retry in ${retryAfterSeconds} s` } };
      }
      if (input.code === undefined || input.code === "") return { result: { code: "otp-required", detail: "send the current one-time code in the Postern-OTP header" } };
      const secret = openSecret(this.#key(state.salt), entry.secret, identity);
      const step = matchTotp(secret, input.code, nowMs);
      const spent = step !== undefined && entry.lastStep !== undefined && step <= entry.lastStep;
      if (step === undefined || spent) {
        const next = { ...state, admins: { ...state.admins, [identity]: { ...entry, failuresMs: [...failures, nowMs] } } };
        return { state: next, result: spent ? { code: "otp-reused", detail: "this one-time code was already used; wait for the next one" } : { code: "otp-invalid", detail: "the one-time code is wrong" } };
      }
      const next = { ...state, admins: { ...state.admins, [identity]: { ...entry, lastStep: step, failuresMs: failures } } };
      return { state: next, result: { step } };
    });
    if ("step" in refusal) {
      await this.#o.audit?.append({ actor: identity, action: "admin.otp.accepted", subject, details: { action, step: refusal.step } });
      return;
    }
    if (refusal.code !== "rate-limited") {
      await this.#o.audit?.append({ actor: identity, action: "admin.otp.refused", subject, details: { action, code: refusal.code } });
    }
    const retry = refusal.code === "rate-limited" ? { extensions: { retryAfterSeconds: this.#o.policy.failureWindowSeconds } } : {};
    throw new PosternError(refusal.code, refusal.detail, retry);
  }

  /**
   * Makes and stores a new 20-byte secret for `identity` and returns it with its otpauth://
   * URI: shown once, never again. An identity already enrolled is refused (`conflict`) unless
   * `replace`.
   */
  async enroll(identity: string, opts: { replace?: boolean; actor?: string } = {}): Promise<{ secret: Buffer; uri: string }> {
    const secret = randomBytes(20);
    await updateOtpState<void>(this.#o.path, async (state) => {
      if (state?.admins[identity] && !opts.replace) {
        return { error: new PosternError("conflict", `${identity} already has a second factor; --replace makes a new one (the old one stops working)`) };
      }
      const base: OtpState = state ?? { version: 1, salt: randomBytes(16).toString("base64"), admins: {} };
      const sealed = sealSecret(this.#key(base.salt), secret, identity);
      return { state: { ...base, admins: { ...base.admins, [identity]: { secret: sealed, enrolledAtMs: this.#now() } } } };
    });
    await this.#o.audit?.append({ actor: opts.actor ?? "postern-cli", action: "admin.otp.enroll", subject: identity, details: { replaced: opts.replace === true } });
    return { secret, uri: otpauthUri(secret, identity) };
  }

  /** Removes `identity`'s second factor; `not-found` when it has none. */
  async remove(identity: string, opts: { actor?: string } = {}): Promise<void> {
    await updateOtpState<void>(this.#o.path, async (state) => {
      if (!state?.admins[identity]) return { error: new PosternError("not-found", `${identity} has no second factor`) };
      const { [identity]: _gone, ...admins } = state.admins;
      return { state: { ...state, admins } };
    });
    await this.#o.audit?.append({ actor: opts.actor ?? "postern-cli", action: "admin.otp.remove", subject: identity, details: {} });
  }

  async list(): Promise<EnrolledAdmin[]> {
    const state = await readOtpState(this.#o.path);
    return Object.entries(state?.admins ?? {}).map(([identity, e]) => ({ identity, enrolledAtMs: e.enrolledAtMs }));
  }

  #key(salt: string): Buffer {
    let key = this.#keys.get(salt);
    if (!key) {
      key = deriveSecretKey(this.#o.passphrase, Buffer.from(salt, "base64"));
      this.#keys.set(salt, key);
    }
    return key;
  }
}
