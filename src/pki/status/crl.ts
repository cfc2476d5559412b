/**
 * Builds X.509 v2 CRLs (RFC 5280 §5) directly in DER: each revokedCertificates entry is
 * encoded once and cached, then concatenated under one signed TBSCertList. This is what keeps
 * 100k entries around a second (x509's generator is O(n^2), pitfall 4). The CRL is an output
 * only: revocation state lives in the store.
 */
import { createHash } from "node:crypto";
import { REVOCATION_REASONS, type RevokedEntry } from "../store/index.js";
import { TAG, bitString, ctx, integerFromHex, octets, oid, seq, time, tlv, tlvOf, uint } from "../der/index.js";
import { issuerFacts, issuerSigner, type SigningIssuer } from "./sign.js";

export type { SigningIssuer } from "./sign.js";

/** A signed CRL in both encodings. */
export interface BuiltCrl {
  der: Uint8Array<ArrayBuffer>;
  /** PEM with the `X509 CRL` label, the only one Node and OpenSSL read (pitfall 1). */
  pem: string;
}

export interface BuildCrlInput {
  issuer: SigningIssuer;
  /** Revoked entries, or DER entries from `CrlEntryCache.encodeAll` (already de-duplicated). */
  entries: readonly RevokedEntry[] | readonly Uint8Array[];
  crlNumber: bigint;
  thisUpdateMs: number;
  nextUpdateMs: number;
}

const REASON_CODE_OID = oid("2.5.29.21");
const AKI_OID = oid("2.5.29.35");
const CRL_NUMBER_OID = oid("2.5.29.20");
const V2 = Uint8Array.of(0x02, 0x01, 0x01);
/** RFC 5280 §5.2.3: cRLNumber is at most 20 octets. */
const MAX_CRL_NUMBER = (1n << 159n) - 1n;

/**
 * Encodes one revokedCertificates entry. The serial is the certificate's own serialNumber
 * bytes (pitfall 6). Every entry carries its reasonCode, `unspecified` (0) included: the OCSP
 * responder states the same reason for the same certificate, and a relying party comparing
 * the two must find them equal (RFC 5280 §5.3.1 only recommends omitting 0). Throws
 * RangeError on malformed serials or unknown reasons.
 */
export function encodeCrlEntry(entry: RevokedEntry): Uint8Array {
  const code = REVOCATION_REASONS[entry.reason];
  if (code === undefined) throw new RangeError(`unknown revocation reason ${String(entry.reason)}`);
  return tlvOf(TAG.sequence, [integerFromHex(entry.serial), time(entry.revokedAtMs), reasonExtensions(code)]);
}

/**
 * Hex SHA-256 naming a revocation set: serials, times (whole seconds, as a CRL encodes them)
 * and reasons, sorted by serial, the first entry of a serial winning. Equal sets give equal
 * digests on every replica, so a stored CRL can be recognised as current.
 */
export function crlEntriesDigest(entries: readonly RevokedEntry[]): string {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const e of entries) {
    const serial = e.serial.toLowerCase();
    if (seen.has(serial)) continue;
    seen.add(serial);
    lines.push(`${serial} ${Math.floor(e.revokedAtMs / 1000)} ${e.reason}`);
  }
  lines.sort();
  return createHash("sha256").update(lines.join("\n")).digest("hex");
}

const reasonExtensionsByCode = new Map<number, Uint8Array<ArrayBuffer>>();

/** crlEntryExtensions holding only reasonCode; 10 possible values, so each is built once. */
function reasonExtensions(code: number): Uint8Array<ArrayBuffer> {
  let ext = reasonExtensionsByCode.get(code);
  if (!ext) {
    ext = seq(seq(REASON_CODE_OID, octets(tlv(TAG.enumerated, Uint8Array.of(code)))));
    reasonExtensionsByCode.set(code, ext);
  }
  return ext;
}

/**
 * Remembers each entry's DER by serial so a rebuild after one more revocation encodes one
 * entry, not all of them. Entries missing from the latest `encodeAll` are dropped.
 */
export class CrlEntryCache {
  #bySerial = new Map<string, { revokedAtMs: number; reason: string; der: Uint8Array }>();

  /** Returns one DER per distinct serial (the first entry wins, like the store's revoke). */
  encodeAll(entries: readonly RevokedEntry[]): Uint8Array[] {
    const next = new Map<string, { revokedAtMs: number; reason: string; der: Uint8Array }>();
    const out: Uint8Array[] = [];
    for (const e of entries) {
      const serial = e.serial.toLowerCase();
      if (next.has(serial)) continue;
      let hit = this.#bySerial.get(serial);
      if (!hit || hit.revokedAtMs !== e.revokedAtMs || hit.reason !== e.reason) {
        hit = { revokedAtMs: e.revokedAtMs, reason: e.reason, der: encodeCrlEntry(e) };
      }
      next.set(serial, hit);
      out.push(hit.der);
    }
    this.#bySerial = next;
    return out;
  }

  get size(): number {
    return this.#bySerial.size;
  }
}

/**
 * Builds and signs a full CRL with the AuthorityKeyIdentifier and cRLNumber extensions.
 * Signature algorithm follows the issuer key (P-256, P-384, Ed25519, RSA). Refuses
 * (RangeError) a nextUpdate not after thisUpdate or a cRLNumber outside 0..2^159-1.
 */
export function buildCrl(input: BuildCrlInput): BuiltCrl {
  const { issuer, crlNumber, thisUpdateMs, nextUpdateMs } = input;
  if (!(nextUpdateMs > thisUpdateMs)) throw new RangeError("nextUpdate must be after thisUpdate");
  if (crlNumber < 0n || crlNumber > MAX_CRL_NUMBER) throw new RangeError("cRLNumber out of range");
  const entryDers = toEntryDers(input.entries);
  const facts = issuerFacts(issuer.cert);
  const signer = issuerSigner(issuer.privateKey);

  const aki = seq(AKI_OID, octets(seq(tlv(ctx(0, false), facts.keyIdentifier))));
  const number = seq(CRL_NUMBER_OID, octets(uint(crlNumber)));
  const tbsParts = [
    V2,
    signer.algorithmDer,
    facts.subjectDer,
    time(thisUpdateMs),
    time(nextUpdateMs),
  ];
  // An empty revokedCertificates must be absent, not an empty SEQUENCE (RFC 5280 §5.1.2.6).
  if (entryDers.length > 0) tbsParts.push(tlvOf(TAG.sequence, entryDers));
  tbsParts.push(tlv(ctx(0, true), seq(aki, number)));
  const tbs = seq(...tbsParts);
  const der = seq(tbs, signer.algorithmDer, bitString(signer.sign(tbs)));
  return { der, pem: crlDerToPem(der) };
}

function toEntryDers(entries: readonly RevokedEntry[] | readonly Uint8Array[]): readonly Uint8Array[] {
  if (entries.length === 0) return [];
  if (entries[0] instanceof Uint8Array) return entries as readonly Uint8Array[];
  return new CrlEntryCache().encodeAll(entries as readonly RevokedEntry[]);
}

/** PEM-encodes a CRL with the `X509 CRL` label and 64-column lines. */
export function crlDerToPem(der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString("base64");
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN X509 CRL-----\n${lines.join("\n")}\n-----END X509 CRL-----\n`;
}

export interface BuildRootCrlInput {
  root: SigningIssuer;
  crlNumber: bigint;
  nowMs: number;
  /** Default one year: the root key is expected offline, so this CRL must outlive it. */
  validityMs?: number;
  /** Revoked intermediates, if any (normally none). */
  entries?: readonly RevokedEntry[];
}

/** One year, in milliseconds. */
export const ROOT_CRL_VALIDITY_MS = 365 * 24 * 3600 * 1000;

/**
 * Builds the root CA's CRL while the root key is at hand (bootstrap, or an offline ceremony).
 * The caller stores it as `root-ca.crl` and hands its PEM to `CrlPublisher`, because Node's
 * `crl` option needs a CRL for every CA in the chain (pitfall 2).
 */
export function buildRootCrl(input: BuildRootCrlInput): BuiltCrl & { nextUpdateMs: number } {
  const thisUpdateMs = Math.floor(input.nowMs / 1000) * 1000;
  const nextUpdateMs = thisUpdateMs + (input.validityMs ?? ROOT_CRL_VALIDITY_MS);
  const built = buildCrl({
    issuer: input.root,
    entries: input.entries ?? [],
    crlNumber: input.crlNumber,
    thisUpdateMs,
    nextUpdateMs,
  });
  return { ...built, nextUpdateMs };
}
