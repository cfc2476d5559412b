/**
 * The PKI store for several replicas, on Redis. Certificates are immutable JSON; revocations
 * live in a hash (first writer wins, in a Lua script that also publishes on
 * `<prefix>revocations`); tokens are consumed with GETDEL; the published CRL (number, times,
 * digest, DER) is one hash replaced only by a higher number, so every replica serves it.
 * Every key carries the prefix's single hash tag, so one Redis Cluster slot holds the store.
 * One file (over ~300 lines): it is one adapter of the PkiStore port, method for method, and
 * the contract suite in test/pki/store-contract.ts checks it against the file store.
 */
import { createHash } from "node:crypto";
import { subscriberOf, type RedisClient } from "../../redis/index.js";
import { PosternError } from "../../errors.js";
import {
  checkCertificateRecord, checkTokenRecord, decodeCursor, encodeCursor, isRevocationReason,
  matchesFilter, normalizeSerial, pageLimit,
} from "./common.js";
import { FAIL_TOKEN, PUT_CERTIFICATE, PUT_CRL_STATE, PUT_TOKEN, REVOKE, runScript } from "./redis-scripts.js";
import type {
  CertificateFilter, CertificatePage, CertificateRecord, EnrollmentTokenRecord, PkiStore,
  RevocationReason, RevokedEntry, StoreCounts, StoredCrl,
} from "./store.js";

export interface RedisStoreOptions {
  /** A connected ioredis client. The caller owns it: `close()` does not quit it. */
  redis: RedisClient;
  /** Key prefix with exactly one hash tag, such as `postern:{pki}:`. */
  keyPrefix: string;
}

/** Redis keeps a token this much past its expiry so server clock skew never expires it early. */
const TOKEN_TTL_SLACK_MS = 60_000;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const HASH_TAGGED = /^[^{}]*\{[^{}]+\}[^{}]*$/;

interface Revocation {
  revokedAtMs: number;
  reason: RevocationReason;
}

/** Redis-backed `PkiStore`; atomic across replicas. */
export class RedisStore implements PkiStore {
  readonly #redis: RedisClient;
  readonly #p: string;
  readonly #subscribers = new Set<RedisClient>();

  /** Throws RangeError unless `keyPrefix` has exactly one non-empty `{hash tag}`. */
  constructor(opts: RedisStoreOptions) {
    if (!HASH_TAGGED.test(opts.keyPrefix)) {
      throw new RangeError("keyPrefix must contain exactly one {hash tag}, e.g. postern:{pki}:");
    }
    this.#redis = opts.redis;
    this.#p = opts.keyPrefix;
  }

  #certKey = (serial: string) => `${this.#p}cert:${serial}`;
  #allKey = () => `${this.#p}certs`;
  #identityKey = (identity: string) => `${this.#p}certs:id:${createHash("sha256").update(identity).digest("hex")}`;
  #revokedKey = () => `${this.#p}revoked`;
  #revokedIndexKey = () => `${this.#p}revoked:idx`;
  #tokenKey = (hash: string) => `${this.#p}token:${hash}`;
  #tokenFailKey = (hash: string) => `${this.#p}token-failures:${hash}`;
  #tokenIndexKey = () => `${this.#p}tokens`;
  #crlKey = () => `${this.#p}crl`;
  /** Written by older versions: a bare INCR counter. */
  #legacyCrlKey = () => `${this.#p}crl-number`;
  #channel = () => `${this.#p}revocations`;

  async putCertificate(record: CertificateRecord): Promise<void> {
    const rec = checkCertificateRecord(record);
    const { status: _s, revokedAtMs, revocationReason, ...immutable } = rec;
    const revocation = rec.status === "revoked" ? JSON.stringify({ revokedAtMs, reason: revocationReason }) : "";
    const event = JSON.stringify({ serial: rec.serial, revokedAtMs, reason: revocationReason });
    const result = await runScript(
      this.#redis,
      PUT_CERTIFICATE,
      [this.#certKey(rec.serial), this.#allKey(), this.#identityKey(rec.identity), this.#revokedKey(), this.#revokedIndexKey()],
      [JSON.stringify(immutable), rec.fingerprint, rec.serial, revocation, this.#channel(), event],
    );
    if (result === -1) throw new PosternError("conflict", "a different certificate with this serial exists");
  }

  async getCertificate(serial: string): Promise<CertificateRecord | undefined> {
    const key = normalizeSerial(serial);
    const [json, rev] = await Promise.all([this.#redis.get(this.#certKey(key)), this.#redis.hget(this.#revokedKey(), key)]);
    return json ? merge(json, rev) : undefined;
  }

  async listCertificates(filter: CertificateFilter): Promise<CertificatePage> {
    const limit = pageLimit(filter);
    let after = decodeCursor(filter.cursor);
    const index =
      filter.identity !== undefined ? this.#identityKey(filter.identity)
      : filter.status === "revoked" ? this.#revokedIndexKey()
      : this.#allKey();
    const batchSize = Math.max(limit + 1, 200);
    const items: CertificateRecord[] = [];
    while (items.length <= limit) {
      const serials = await this.#redis.zrangebylex(index, after === undefined ? "-" : `(${after}`, "+", "LIMIT", 0, batchSize);
      if (serials.length === 0) break;
      const [jsons, revs] = await Promise.all([
        this.#redis.mget(serials.map((s) => this.#certKey(s))),
        this.#redis.hmget(this.#revokedKey(), ...serials),
      ]);
      serials.forEach((_, i) => {
        const json = jsons[i];
        if (!json || items.length > limit) return;
        const rec = merge(json, revs[i] ?? null);
        if (matchesFilter(rec, filter)) items.push(rec);
      });
      after = serials[serials.length - 1];
      if (serials.length < batchSize) break;
    }
    // One look-ahead match decides whether a next page exists, so the last page has no cursor.
    if (items.length <= limit) return { items };
    items.length = limit;
    return { items, nextCursor: encodeCursor(items[limit - 1]?.serial ?? "") };
  }

  async revoke(serial: string, reason: RevocationReason, atMs: number): Promise<CertificateRecord | undefined> {
    const key = normalizeSerial(serial);
    if (!isRevocationReason(reason)) throw new PosternError("bad-request", "unknown revocation reason");
    if (!Number.isFinite(atMs)) throw new PosternError("bad-request", "invalid revocation time");
    const result = (await runScript(
      this.#redis,
      REVOKE,
      [this.#certKey(key), this.#revokedKey(), this.#revokedIndexKey()],
      [key, JSON.stringify({ revokedAtMs: atMs, reason }), this.#channel(), JSON.stringify({ serial: key, revokedAtMs: atMs, reason })],
    )) as [string, string] | null;
    return result ? merge(result[0], result[1]) : undefined;
  }

  /** Reads revocations with HSCAN so a large set never blocks Redis for other clients. */
  async listRevoked(): Promise<RevokedEntry[]> {
    const out = new Map<string, RevokedEntry>();
    let cursor = "0";
    do {
      const [next, flat] = await this.#redis.hscan(this.#revokedKey(), cursor, "COUNT", 1000);
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const serial = flat[i] ?? "";
        const rev = JSON.parse(flat[i + 1] ?? "{}") as Revocation;
        out.set(serial, { serial, revokedAtMs: rev.revokedAtMs, reason: rev.reason });
      }
      cursor = next;
    } while (cursor !== "0");
    return [...out.values()];
  }

  async missingCertificates(serials: readonly string[]): Promise<string[]> {
    const missing: string[] = [];
    for (let i = 0; i < serials.length; i += 1000) {
      const batch = serials.slice(i, i + 1000).map(normalizeSerial);
      if (batch.length === 0) continue;
      const scores = await this.#redis.zmscore(this.#allKey(), ...batch);
      batch.forEach((_, j) => {
        if (scores[j] === null || scores[j] === undefined) missing.push(serials[i + j]!);
      });
    }
    return missing;
  }

  async counts(): Promise<StoreCounts> {
    const [certificates, revoked] = await Promise.all([this.#redis.zcard(this.#allKey()), this.#redis.hlen(this.#revokedKey())]);
    return { certificates, revoked };
  }

  async putToken(record: EnrollmentTokenRecord): Promise<void> {
    const rec = checkTokenRecord(record);
    const pxat = Math.max(1, Math.floor(rec.expiresAtMs) + TOKEN_TTL_SLACK_MS);
    const created = await runScript(
      this.#redis,
      PUT_TOKEN,
      [this.#tokenKey(rec.tokenHash), this.#tokenIndexKey()],
      [JSON.stringify(rec), pxat, rec.tokenHash, Math.floor(rec.expiresAtMs), Date.now()],
    );
    if (created !== 1) throw new PosternError("conflict", "token already exists");
  }

  async peekToken(tokenHash: string, nowMs: number): Promise<EnrollmentTokenRecord | undefined> {
    if (typeof tokenHash !== "string" || !SHA256_HEX.test(tokenHash)) return undefined;
    const [json, failures] = await this.#redis.mget(this.#tokenKey(tokenHash), this.#tokenFailKey(tokenHash));
    if (!json) return undefined;
    const rec = JSON.parse(json) as EnrollmentTokenRecord;
    if (!(nowMs < rec.expiresAtMs)) return undefined;
    return failures ? { ...rec, failures: Number(failures) } : rec;
  }

  /** GETDEL makes the first consumer the only one; expiry is then checked against `nowMs`. */
  async consumeToken(tokenHash: string, nowMs: number): Promise<EnrollmentTokenRecord | undefined> {
    if (typeof tokenHash !== "string" || !SHA256_HEX.test(tokenHash)) return undefined;
    const json = await this.#redis.getdel(this.#tokenKey(tokenHash));
    if (!json) return undefined;
    await Promise.all([this.#redis.del(this.#tokenFailKey(tokenHash)), this.#redis.zrem(this.#tokenIndexKey(), tokenHash)]);
    const rec = JSON.parse(json) as EnrollmentTokenRecord;
    return nowMs < rec.expiresAtMs ? rec : undefined;
  }

  async failToken(tokenHash: string, maxFailures: number): Promise<number> {
    if (typeof tokenHash !== "string" || !SHA256_HEX.test(tokenHash)) return 0;
    const n = await runScript(this.#redis, FAIL_TOKEN, [this.#tokenKey(tokenHash), this.#tokenFailKey(tokenHash), this.#tokenIndexKey()], [maxFailures, tokenHash]);
    return Number(n);
  }

  async listTokens(nowMs: number): Promise<EnrollmentTokenRecord[]> {
    const hashes = await this.#redis.zrangebyscore(this.#tokenIndexKey(), `(${Math.floor(nowMs)}`, "+inf");
    const out: EnrollmentTokenRecord[] = [];
    for (let i = 0; i < hashes.length; i += 500) {
      const batch = hashes.slice(i, i + 500);
      const [jsons, fails] = await Promise.all([
        this.#redis.mget(batch.map((h) => this.#tokenKey(h))),
        this.#redis.mget(batch.map((h) => this.#tokenFailKey(h))),
      ]);
      jsons.forEach((json, j) => {
        if (!json) return; // consumed meanwhile
        const rec = JSON.parse(json) as EnrollmentTokenRecord;
        const failures = fails[j];
        if (nowMs < rec.expiresAtMs) out.push(failures ? { ...rec, failures: Number(failures) } : rec);
      });
    }
    return out;
  }

  async getCrlState(opts: { withDer?: boolean } = {}): Promise<StoredCrl | undefined> {
    if (opts.withDer === false) {
      const names = ["n", "tu", "nu", "digest"];
      const [values, legacy] = await Promise.all([this.#redis.hmget(this.#crlKey(), ...names), this.#redis.get(this.#legacyCrlKey())]);
      return crlStateOf(names.flatMap((name, i) => (values[i] === null || values[i] === undefined ? [] : [name, values[i]!])), legacy);
    }
    const [fields, legacy] = await Promise.all([this.#redis.hgetall(this.#crlKey()), this.#redis.get(this.#legacyCrlKey())]);
    return crlStateOf(Object.entries(fields).flat(), legacy);
  }

  async putCrlState(crl: StoredCrl): Promise<StoredCrl> {
    const pairs = (await runScript(
      this.#redis,
      PUT_CRL_STATE,
      [this.#crlKey(), this.#legacyCrlKey()],
      [crl.crlNumber.toString(), crl.thisUpdateMs, crl.nextUpdateMs, crl.digest, crl.der ? Buffer.from(crl.der).toString("base64") : ""],
    )) as string[];
    return crlStateOf(pairs, await this.#redis.get(this.#legacyCrlKey()))!;
  }

  /** Subscribes on a duplicate connection (a subscribed connection can run nothing else). */
  async subscribeRevocations(onRevoked: (entry: RevokedEntry) => void): Promise<() => Promise<void>> {
    // The subscriber queues while (re)connecting and resubscribes by itself: a revocation
    // published while it was away is still in the store, and listRevoked() catches it up.
    const sub = subscriberOf(this.#redis);
    this.#subscribers.add(sub);
    const channel = this.#channel();
    sub.on("message", (ch: string, message: string) => {
      if (ch !== channel) return;
      const entry = parseEvent(message);
      if (!entry) return;
      try {
        onRevoked(entry);
      } catch {
        // A subscriber's bug must not kill the connection's event loop.
      }
    });
    try {
      await sub.subscribe(channel);
    } catch (err) {
      this.#subscribers.delete(sub);
      sub.disconnect();
      throw err;
    }
    return async () => {
      if (!this.#subscribers.delete(sub)) return;
      await sub.quit().catch(() => sub.disconnect());
    };
  }

  /** Closes the subscription connections; the injected client stays open. */
  async close(): Promise<void> {
    const subs = [...this.#subscribers];
    this.#subscribers.clear();
    await Promise.all(subs.map((s) => s.quit().catch(() => s.disconnect())));
  }
}

/** The CRL state from HGETALL pairs and the legacy counter (the larger number wins). */
function crlStateOf(pairs: readonly string[], legacy: string | null): StoredCrl | undefined {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < pairs.length; i += 2) f.set(pairs[i]!, pairs[i + 1]!);
  const stored = BigInt(f.get("n") ?? "0");
  const counter = BigInt(legacy ?? "0");
  if (stored === 0n && counter === 0n) return undefined;
  if (counter > stored) return { crlNumber: counter, thisUpdateMs: 0, nextUpdateMs: 0, digest: "" };
  const der = f.get("der");
  return {
    crlNumber: stored,
    thisUpdateMs: Number(f.get("tu")),
    nextUpdateMs: Number(f.get("nu")),
    digest: f.get("digest") ?? "",
    ...(der ? { der: new Uint8Array(Buffer.from(der, "base64")) } : {}),
  };
}

function merge(json: string, revocation: string | null): CertificateRecord {
  const rec = JSON.parse(json) as CertificateRecord;
  if (!revocation) return { ...rec, status: "valid" };
  const rev = JSON.parse(revocation) as Revocation;
  return { ...rec, status: "revoked", revokedAtMs: rev.revokedAtMs, revocationReason: rev.reason };
}

function parseEvent(message: string): RevokedEntry | undefined {
  try {
    const e = JSON.parse(message) as Partial<RevokedEntry>;
    if (typeof e.serial === "string" && typeof e.revokedAtMs === "number" && isRevocationReason(e.reason)) {
      return { serial: e.serial, revokedAtMs: e.revokedAtMs, reason: e.reason };
    }
  } catch {
    // Not ours or garbled: ignore rather than crash the subscriber.
  }
  return undefined;
}
