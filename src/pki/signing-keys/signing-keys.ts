/**
 * The gateway's forward-signing key ring (ARCHITECTURE.md step 6): Ed25519 keys under
 * `<pkiDir>/signing-keys/` (or `pki.signingKeysDir`), one active (signs what the gateway
 * forwards) and retired ones still published in the JWKS until their overlap ends, so entries
 * signed before a rotation keep verifying. `ring.json` is the commit point of every change;
 * replicas and the CLI share the directory and pick up each other's rotations with `reload()`.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from "node:crypto";
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { PosternError } from "../../errors.js";
import { writeFileAtomic } from "../../storage/index.js";
import { exists, pkiPaths, readText } from "../ca/index.js";
import { decryptPrivateKeyPem, encryptPrivateKeyPem, generateKeyPairNow, jwkThumbprint } from "../keys/index.js";
import {
  RING_DIR,
  keyFilePath,
  readRing,
  ringPaths,
  withRingLock,
  writeRing,
  type RingKeyEntry,
  type RingState,
} from "./file.js";

export type { RingKeyEntry } from "./file.js";

/** A public JWK as published at `/.well-known/postern-keys`: never any private member. */
export type PublicSigningJwk = JsonWebKey & { kty: "OKP"; crv: "Ed25519"; x: string; kid: string; use: "sig"; alg: "EdDSA" };

/** The active key and its kid; structurally the forwarder's `ForwardSigner`. */
export interface ActiveSigningKey {
  key: KeyObject;
  keyid: string;
}

export interface OpenSigningKeyRingOptions {
  pkiDir: string;
  /**
   * The ring's own directory; default `<pkiDir>/signing-keys`. Elsewhere when the PKI directory
   * is read-only (a pod's Secret): the ring is written at first start and at every rotation.
   */
  dir?: string;
  /** The CA passphrase: every key file is encrypted with it, as the CA keys are. */
  passphrase: string;
  now?: () => number;
  /** The single key of older deployments, imported as the first active key; default `<pkiDir>/gateway-signing.key`. */
  legacyKeyFile?: string;
}

export interface RotateOptions {
  /** How long the retired key stays in the JWKS; default 7 days (how long stream entries may wait). 0 drops it at once. */
  overlapSeconds?: number;
}

export interface RotateResult {
  activeKid: string;
  retiredKid: string;
  /** Until when the retired key stays in the JWKS. */
  retiredPublishUntilMs: number;
  /** Retired keys whose overlap had passed: removed from the ring, their files deleted. */
  prunedKids: string[];
}

export const DEFAULT_OVERLAP_SECONDS = 7 * 86_400;

interface LoadedKey {
  key: KeyObject;
  jwk: PublicSigningJwk;
}

export class SigningKeyRing {
  readonly dir: string;
  readonly #paths: ReturnType<typeof ringPaths>;
  readonly #passphrase: string;
  readonly #now: () => number;
  #state: RingState;
  #loaded: ReadonlyMap<string, LoadedKey>;

  private constructor(paths: ReturnType<typeof ringPaths>, passphrase: string, now: () => number, state: RingState, loaded: ReadonlyMap<string, LoadedKey>) {
    this.#paths = paths;
    this.dir = this.#paths.dir;
    this.#passphrase = passphrase;
    this.#now = now;
    this.#state = state;
    this.#loaded = loaded;
  }

  /**
   * Loads the ring; when there is none, imports the legacy key (keeping its kid) or creates a
   * first key. A wrong passphrase, a damaged `ring.json` or a missing active key file fails.
   */
  static async open(opts: OpenSigningKeyRingOptions): Promise<SigningKeyRing> {
    const now = opts.now ?? Date.now;
    const paths = ringPaths(opts.dir ?? join(opts.pkiDir, RING_DIR));
    let state = await readRing(paths.ring);
    if (!state) {
      await mkdir(paths.dir, { recursive: true, mode: 0o700 });
      const legacy = opts.legacyKeyFile ?? pkiPaths(opts.pkiDir).legacySigningKey;
      // Under the lock, so two replicas starting together agree on one first key.
      state = await withRingLock(paths.lock, now, async () =>
        (await readRing(paths.ring)) ?? createRing(paths, opts.passphrase, legacy, now()));
    }
    const loaded = await loadKeys(paths.dir, state, opts.passphrase, now(), new Map());
    return new SigningKeyRing(paths, opts.passphrase, now, state, loaded);
  }

  /** The key that signs what the gateway forwards now. */
  active(): ActiveSigningKey {
    return { key: this.#loaded.get(this.#state.active)!.key, keyid: this.#state.active };
  }

  /** The public JWKS: the active key, then retired keys still within their overlap, newest first. */
  jwks(): { keys: PublicSigningJwk[] } {
    const nowMs = this.#now();
    const keys = this.entries()
      .filter((e) => e.kid === this.#state.active || (e.publishUntilMs !== undefined && e.publishUntilMs > nowMs))
      .flatMap((e) => {
        const loaded = this.#loaded.get(e.kid);
        return loaded ? [{ ...loaded.jwk }] : [];
      });
    return { keys };
  }

  /** Every key of `ring.json` (including retired keys not yet pruned): the active one first, then newest first. */
  entries(): RingKeyEntry[] {
    const rank = (e: RingKeyEntry) => (e.kid === this.#state.active ? Infinity : e.retiredAtMs ?? e.createdAtMs);
    return this.#state.keys.map((e) => ({ ...e })).sort((a, b) => rank(b) - rank(a));
  }

  /**
   * Makes a new key active and retires the old one, published for `overlapSeconds` more.
   * Retired keys whose overlap has passed are pruned. The new key file is written first,
   * `ring.json` (atomically) after it, and pruned files are deleted only once it is committed:
   * a crash at any point leaves a valid ring. Builds on the ring on disk, not on this instance's view.
   */
  async rotate(opts: RotateOptions = {}): Promise<RotateResult> {
    const overlapSeconds = opts.overlapSeconds ?? DEFAULT_OVERLAP_SECONDS;
    if (!Number.isFinite(overlapSeconds) || overlapSeconds < 0) {
      throw new PosternError("bad-request", "overlapSeconds must be a non-negative number");
    }
    return withRingLock(this.#paths.lock, this.#now, async () => {
      const current = await this.#readCommitted();
      const nowMs = this.#now();
      const key = generateKeyPairNow("Ed25519").privateKey;
      const jwk = publicJwkOf(key);
      await writeFileAtomic(keyFilePath(this.dir, jwk.kid), encryptPrivateKeyPem(key, this.#passphrase), { mode: 0o600 });
      const publishUntilMs = nowMs + Math.round(overlapSeconds * 1000);
      const kept: RingKeyEntry[] = [];
      const prunedKids: string[] = [];
      for (const old of current.keys) {
        const entry = old.kid === current.active
          ? { ...old, retiredAtMs: nowMs, publishUntilMs }
          : old;
        if (entry.publishUntilMs !== undefined && entry.publishUntilMs <= nowMs) prunedKids.push(entry.kid);
        else kept.push(entry);
      }
      const next: RingState = { active: jwk.kid, keys: [{ kid: jwk.kid, createdAtMs: nowMs }, ...kept] };
      await writeRing(this.#paths.ring, next);
      await removeUnlistedFiles(this.dir, next);
      const cache = new Map(this.#loaded).set(jwk.kid, { key, jwk });
      this.#loaded = await loadKeys(this.dir, next, this.#passphrase, nowMs, cache);
      this.#state = next;
      return { activeKid: jwk.kid, retiredKid: current.active, retiredPublishUntilMs: publishUntilMs, prunedKids };
    });
  }

  /**
   * Re-reads `ring.json` (another replica or the CLI may have rotated); returns whether the
   * active kid changed. A failed reload throws and keeps the current keys.
   */
  async reload(): Promise<boolean> {
    const next = await this.#readCommitted();
    const loaded = await loadKeys(this.dir, next, this.#passphrase, this.#now(), this.#loaded);
    const changed = next.active !== this.#state.active;
    this.#state = next;
    this.#loaded = loaded;
    return changed;
  }

  async #readCommitted(): Promise<RingState> {
    const state = await readRing(this.#paths.ring);
    if (!state) throw new PosternError("internal", `${this.#paths.ring} has disappeared`);
    return state;
  }
}

function publicJwkOf(key: KeyObject): PublicSigningJwk {
  const { kty, crv, x } = createPublicKey(key).export({ format: "jwk" });
  if (kty !== "OKP" || crv !== "Ed25519" || typeof x !== "string") {
    throw new PosternError("internal", "a forward-signing key must be Ed25519");
  }
  return { kty, crv, x, kid: jwkThumbprint({ kty, crv, x }), use: "sig", alg: "EdDSA" };
}

async function createRing(
  paths: ReturnType<typeof ringPaths>,
  passphrase: string,
  legacyKeyFile: string,
  nowMs: number,
): Promise<RingState> {
  let pem: string;
  let kid: string;
  if (await exists(legacyKeyFile)) {
    // The legacy file is encrypted with the same passphrase: decrypting it proves that, and the PEM is kept as is.
    pem = await readText(legacyKeyFile);
    kid = publicJwkOf(decryptPrivateKeyPem(pem, passphrase, legacyKeyFile)).kid;
  } else {
    const key = generateKeyPairNow("Ed25519").privateKey;
    pem = encryptPrivateKeyPem(key, passphrase);
    kid = publicJwkOf(key).kid;
  }
  await writeFileAtomic(keyFilePath(paths.dir, kid), pem, { mode: 0o600 });
  const state: RingState = { active: kid, keys: [{ kid, createdAtMs: nowMs }] };
  await writeRing(paths.ring, state);
  return state;
}

/**
 * Decrypts the keys that are active or still published at `nowMs`, reusing `cache`. Each
 * file must hold the key its name claims. A retired key whose file is gone is skipped (a
 * concurrent rotation may just have pruned it); a missing active key fails.
 */
async function loadKeys(
  dir: string,
  state: RingState,
  passphrase: string,
  nowMs: number,
  cache: ReadonlyMap<string, LoadedKey>,
): Promise<Map<string, LoadedKey>> {
  const out = new Map<string, LoadedKey>();
  for (const entry of state.keys) {
    const isActive = entry.kid === state.active;
    if (!isActive && (entry.publishUntilMs ?? 0) <= nowMs) continue;
    const cached = cache.get(entry.kid);
    if (cached) {
      out.set(entry.kid, cached);
      continue;
    }
    const path = keyFilePath(dir, entry.kid);
    if (!isActive && !(await exists(path))) continue;
    const key = decryptPrivateKeyPem(await readText(path), passphrase, path);
    const jwk = publicJwkOf(key);
    if (jwk.kid !== entry.kid) throw new PosternError("internal", `${path} holds key ${jwk.kid}, not ${entry.kid}`);
    out.set(entry.kid, { key, jwk });
  }
  return out;
}

/** Deletes key files the committed ring no longer lists (pruned keys, leftovers of a crash) and stray temp files. */
async function removeUnlistedFiles(dir: string, state: RingState): Promise<void> {
  const listed = new Set(state.keys.map((k) => `${k.kid}.key`));
  for (const name of await readdir(dir)) {
    if ((name.endsWith(".key") && !listed.has(name)) || name.endsWith(".tmp")) await rm(join(dir, name), { force: true });
  }
}
