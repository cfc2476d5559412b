/**
 * A backend's encryption key ring, on the consumer's side: `ring.json` (which key is active,
 * which are retired and until when they stay current), one PKCS#8 PEM per private key (0600),
 * and `jwks.json`, the public half, which is the only file the gateway needs. Rotation keeps
 * the retired key current for an overlap, so bodies sealed to it just before still pass the
 * gateway and decrypt. The private keys are written in the clear (0600) so any JOSE library
 * can read them: keep the directory on the consumer's host, never in the gateway's PKI.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdir, open, readFile, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { PosternError } from "../errors.js";
import { readStateFile, writeFileAtomic } from "../storage/index.js";
import { SEAL_ALGORITHMS, SEAL_CURVES, type SealAlgorithm, type SealCurve } from "./profile.js";
import { sealingKeyThumbprint, type PublicSealingJwk, type SealingJwksDocument } from "./public-jwks.js";

export interface BackendKeyEntry {
  kid: string;
  createdAtMs: number;
  retiredAtMs?: number;
  /** Until when a retired key stays current (published, accepted by the gateway). */
  publishUntilMs?: number;
}

/** `ring.json`. */
export interface BackendKeyRingState {
  backend: string;
  alg: SealAlgorithm;
  crv: SealCurve;
  active: string;
  keys: BackendKeyEntry[];
}

/** A private key of the ring, by kid. */
export interface BackendPrivateKey {
  kid: string;
  crv: SealCurve;
  key: KeyObject;
}

export const DEFAULT_SEAL_OVERLAP_SECONDS = 7 * 86_400;
const RING_FILE = "ring.json";
const JWKS_FILE = "jwks.json";
const LOCK_FILE = "ring.lock";
const STALE_LOCK_MS = 60_000;
const KID_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** The public JWKS file of the ring in `dir`: copy it to the gateway (`backends.<name>.sealing.publicKeys`). */
export function backendJwksPath(dir: string): string {
  return join(dir, JWKS_FILE);
}

/**
 * Creates a ring with one active key in `dir` (made 0700 if new).
 * @throws PosternError conflict when `dir` already holds a ring.
 */
export async function createBackendKeyRing(
  dir: string,
  opts: { backend: string; alg: SealAlgorithm; crv: SealCurve; now?: () => number },
): Promise<BackendKeyRingState> {
  if (!(SEAL_ALGORITHMS as readonly string[]).includes(opts.alg)) throw new PosternError("bad-request", `alg must be one of ${SEAL_ALGORITHMS.join(", ")}`);
  if (!(SEAL_CURVES as readonly string[]).includes(opts.crv)) throw new PosternError("bad-request", `curve must be one of ${SEAL_CURVES.join(", ")}`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const nowMs = (opts.now ?? Date.now)();
  return withLock(dir, async () => {
    if (await readRingFile(dir)) throw new PosternError("conflict", `${dir} already holds a key ring; use rotate`);
    const kid = await writeNewKey(dir, opts.crv);
    const state: BackendKeyRingState = { backend: opts.backend, alg: opts.alg, crv: opts.crv, active: kid, keys: [{ kid, createdAtMs: nowMs }] };
    await commit(dir, state, nowMs);
    return state;
  });
}

export interface BackendRotateResult {
  state: BackendKeyRingState;
  retiredKid: string;
  retiredPublishUntilMs: number;
  prunedKids: string[];
}

/**
 * Makes a new key active; the old one stays current for `overlapSeconds`. Retired keys past
 * their overlap are pruned (their files deleted after `ring.json` is committed).
 */
export async function rotateBackendKeyRing(dir: string, opts: { overlapSeconds?: number; now?: () => number } = {}): Promise<BackendRotateResult> {
  const overlapSeconds = opts.overlapSeconds ?? DEFAULT_SEAL_OVERLAP_SECONDS;
  if (!Number.isFinite(overlapSeconds) || overlapSeconds < 0) throw new PosternError("bad-request", "the overlap must be a non-negative number of seconds");
  return withLock(dir, async () => {
    const current = await readBackendKeyRing(dir);
    const nowMs = (opts.now ?? Date.now)();
    const kid = await writeNewKey(dir, current.crv);
    const publishUntilMs = nowMs + Math.round(overlapSeconds * 1000);
    const kept: BackendKeyEntry[] = [];
    const prunedKids: string[] = [];
    for (const old of current.keys) {
      const entry = old.kid === current.active ? { ...old, retiredAtMs: nowMs, publishUntilMs } : old;
      if (entry.publishUntilMs !== undefined && entry.publishUntilMs <= nowMs) prunedKids.push(entry.kid);
      else kept.push(entry);
    }
    const state: BackendKeyRingState = { ...current, active: kid, keys: [{ kid, createdAtMs: nowMs }, ...kept] };
    await commit(dir, state, nowMs);
    const listed = new Set(state.keys.map((k) => `${k.kid}.key`));
    for (const name of await readdir(dir)) {
      if ((name.endsWith(".key") && !listed.has(name)) || name.endsWith(".tmp")) await rm(join(dir, name), { force: true });
    }
    return { state, retiredKid: current.active, retiredPublishUntilMs: publishUntilMs, prunedKids };
  });
}

/** Reads `ring.json`. @throws PosternError not-found when `dir` holds no ring, internal when it is damaged. */
export async function readBackendKeyRing(dir: string): Promise<BackendKeyRingState> {
  const state = await readRingFile(dir);
  if (!state) throw new PosternError("not-found", `${dir} holds no backend key ring (${RING_FILE}); create one with postern keys backend create`);
  return state;
}

/**
 * The private keys a consumer decrypts with: every key of the ring in `dir` whose file is
 * still there (retired keys too: a body sealed during the overlap may wait in a stream), or
 * the one PEM file `dir` names.
 */
export async function loadBackendPrivateKeys(dirOrFile: string): Promise<Map<string, BackendPrivateKey>> {
  const out = new Map<string, BackendPrivateKey>();
  if ((await stat(dirOrFile)).isFile()) {
    const key = privateKeyFromPem(await readFile(dirOrFile, "utf8"), dirOrFile);
    out.set(key.kid, key);
    return out;
  }
  const state = await readBackendKeyRing(dirOrFile);
  for (const entry of state.keys) {
    const path = join(dirOrFile, `${entry.kid}.key`);
    const pem = await readFile(path, "utf8").catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT" && entry.kid !== state.active) return undefined;
      throw error;
    });
    if (pem === undefined) continue;
    const key = privateKeyFromPem(pem, path);
    if (key.kid !== entry.kid) throw new PosternError("internal", `${path} holds key ${key.kid}, not ${entry.kid}`);
    out.set(key.kid, key);
  }
  return out;
}

/** A PEM private key (PKCS#8, X25519 or P-256) with its kid. @throws PosternError bad-request otherwise. */
export function privateKeyFromPem(pem: string, name: string): BackendPrivateKey {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (cause) {
    throw new PosternError("bad-request", `${name} is not a private key PEM`, { cause });
  }
  const { kty, crv, x, y } = createPublicKey(key).export({ format: "jwk" });
  if (typeof kty !== "string" || typeof x !== "string" || (crv !== "X25519" && crv !== "P-256")) {
    throw new PosternError("bad-request", `${name} is not an X25519 or P-256 key`);
  }
  return { kid: sealingKeyThumbprint({ kty, crv, x, y }), crv, key };
}

/** The public JWKS of `state` (the active key first, then retired keys with their publishUntil). */
export function publicJwksOf(state: BackendKeyRingState, publicKeys: ReadonlyMap<string, PublicSealingJwk>): SealingJwksDocument {
  const ordered = [...state.keys].sort((a, b) => (a.kid === state.active ? -1 : b.kid === state.active ? 1 : b.createdAtMs - a.createdAtMs));
  const publishUntil: Record<string, number> = {};
  for (const e of ordered) if (e.publishUntilMs !== undefined) publishUntil[e.kid] = e.publishUntilMs;
  return { keys: ordered.flatMap((e) => (publicKeys.has(e.kid) ? [publicKeys.get(e.kid)!] : [])), publishUntil };
}

async function writeNewKey(dir: string, crv: SealCurve): Promise<string> {
  const { privateKey } = crv === "X25519" ? generateKeyPairSync("x25519") : generateKeyPairSync("ec", { namedCurve: "P-256" });
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  const { kid } = privateKeyFromPem(pem, "a new key");
  await writeFileAtomic(join(dir, `${kid}.key`), pem, { mode: 0o600 });
  return kid;
}

/** Writes `ring.json` (the commit point), then `jwks.json` from the keys it lists. */
async function commit(dir: string, state: BackendKeyRingState, nowMs: number): Promise<void> {
  await writeFileAtomic(join(dir, RING_FILE), JSON.stringify(state, null, 2) + "\n", { mode: 0o600 });
  const publicKeys = new Map<string, PublicSealingJwk>();
  for (const entry of state.keys) {
    if (entry.publishUntilMs !== undefined && entry.publishUntilMs <= nowMs) continue;
    const pem = await readFile(join(dir, `${entry.kid}.key`), "utf8").catch(() => undefined);
    if (pem === undefined) continue;
    const { key } = privateKeyFromPem(pem, entry.kid);
    const { kty, crv, x, y } = createPublicKey(key).export({ format: "jwk" });
    publicKeys.set(entry.kid, {
      kty: kty as "OKP" | "EC", crv: crv as SealCurve, x: x!, ...(y !== undefined ? { y } : {}), kid: entry.kid, use: "enc", alg: state.alg,
    });
  }
  await writeFileAtomic(join(dir, JWKS_FILE), JSON.stringify(publicJwksOf(state, publicKeys), null, 2) + "\n", { mode: 0o644 });
}

function readRingFile(dir: string): Promise<BackendKeyRingState | undefined> {
  return readStateFile(join(dir, RING_FILE), parseRing);
}

function parseRing(value: unknown): BackendKeyRingState {
  const v = value as Partial<Record<keyof BackendKeyRingState, unknown>> | null;
  if (typeof v?.backend !== "string" || typeof v.active !== "string" || !Array.isArray(v.keys)) throw new Error("needs backend, active and keys");
  if (!(SEAL_ALGORITHMS as readonly unknown[]).includes(v.alg) || !(SEAL_CURVES as readonly unknown[]).includes(v.crv)) throw new Error("bad alg or crv");
  const keys = (v.keys as Array<Record<string, unknown>>).map((e) => {
    if (typeof e?.kid !== "string" || !KID_PATTERN.test(e.kid) || typeof e.createdAtMs !== "number") throw new Error("a key has no valid kid or createdAtMs");
    return {
      kid: e.kid,
      createdAtMs: e.createdAtMs,
      ...(typeof e.retiredAtMs === "number" && { retiredAtMs: e.retiredAtMs }),
      ...(typeof e.publishUntilMs === "number" && { publishUntilMs: e.publishUntilMs }),
    };
  });
  if (!keys.some((k) => k.kid === v.active && k.retiredAtMs === undefined)) throw new Error("the active key is not a live key of the ring");
  return { backend: v.backend, alg: v.alg as SealAlgorithm, crv: v.crv as SealCurve, active: v.active, keys };
}

async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = join(dir, LOCK_FILE);
  try {
    await (await open(lock, "wx", 0o600)).close();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    const ageMs = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0);
    if (ageMs <= STALE_LOCK_MS) throw new PosternError("conflict", `the key ring is locked by another writer (${lock})`);
    await rm(lock, { force: true });
    await (await open(lock, "wx", 0o600)).close();
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}
