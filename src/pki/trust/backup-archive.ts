/**
 * The sealed form of a PKI backup: the archive as gzipped JSON, encrypted with AES-256-GCM
 * under a key derived from the CA passphrase with scrypt (node:crypto only). The header
 * (format, version, KDF parameters, salt, IV) is authenticated as additional data, so a
 * changed parameter fails like a changed byte. Without the passphrase nothing in it is
 * readable: certificates are public, but token hashes and the inventory's shape are not.
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import { PosternError } from "../../errors.js";
import type { CertificateRecord, EnrollmentTokenRecord } from "../store/index.js";

export const ARCHIVE_FORMAT = "postern-pki-backup";

/** What a backup holds. Numbers that may exceed 2^53 (cRLNumber) are decimal strings. */
export interface PkiArchive {
  format: typeof ARCHIVE_FORMAT;
  v: 1;
  createdAt: string;
  /** Hex SHA-256 of the root certificate: an archive restores only into its own CA. */
  pkiId: string;
  /** Every certificate record, revoked ones with their time and reason. */
  certificates: CertificateRecord[];
  /** Live enrollment tokens (hashes only, as stored). */
  tokens: EnrollmentTokenRecord[];
  crl: { crlNumber: string; thisUpdateMs: number; nextUpdateMs: number; digest: string } | null;
  /** The trust ledger when the backup began: what the archive contains at least. */
  ledger: { certificates: number; revocations: number; crlHighWater: string };
  /** The audit log's last line when the backup was taken, to anchor it. */
  auditHead: { path: string; seq: number; hash: string } | null;
}

interface SealedHeader {
  format: typeof ARCHIVE_FORMAT;
  v: 1;
  cipher: "aes-256-gcm";
  kdf: { name: "scrypt"; N: number; r: number; p: number; salt: string };
  iv: string;
}

const SCRYPT = { N: 1 << 15, r: 8, p: 1 };

function keyFor(passphrase: string, kdf: SealedHeader["kdf"]): Buffer {
  if (kdf.name !== "scrypt" || kdf.N > 1 << 20 || kdf.r > 32 || kdf.p > 16) throw new PosternError("bad-request", "the archive asks for key derivation parameters this version refuses");
  return scryptSync(passphrase, Buffer.from(kdf.salt, "base64"), 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 256 * kdf.N * kdf.r });
}

/** Seals `archive` with the CA passphrase; returns the file's bytes (one JSON object). */
export function sealArchive(archive: PkiArchive, passphrase: string): Buffer {
  const header: SealedHeader = {
    format: ARCHIVE_FORMAT,
    v: 1,
    cipher: "aes-256-gcm",
    kdf: { name: "scrypt", ...SCRYPT, salt: randomBytes(16).toString("base64") },
    iv: randomBytes(12).toString("base64"),
  };
  const cipher = createCipheriv("aes-256-gcm", keyFor(passphrase, header.kdf), Buffer.from(header.iv, "base64"));
  cipher.setAAD(Buffer.from(JSON.stringify(header)));
  const data = Buffer.concat([cipher.update(gzipSync(JSON.stringify(archive))), cipher.final()]);
  return Buffer.from(JSON.stringify({ ...header, tag: cipher.getAuthTag().toString("base64"), data: data.toString("base64") }) + "\n");
}

/**
 * Opens a sealed archive. Throws `bad-request` when the file is not one, and when the
 * passphrase is wrong or a byte changed (GCM cannot tell which; the message says both).
 */
export function openArchive(bytes: Uint8Array, passphrase: string): PkiArchive {
  let sealed: SealedHeader & { tag: string; data: string };
  try {
    sealed = JSON.parse(Buffer.from(bytes).toString("utf8")) as SealedHeader & { tag: string; data: string };
  } catch {
    throw new PosternError("bad-request", "not a Postern PKI backup (not JSON)");
  }
  if (sealed.format !== ARCHIVE_FORMAT || sealed.v !== 1 || sealed.cipher !== "aes-256-gcm" || typeof sealed.data !== "string") {
    throw new PosternError("bad-request", "not a Postern PKI backup of a version this one reads");
  }
  const { tag, data, ...header } = sealed;
  let plain: Buffer;
  try {
    const decipher = createDecipheriv("aes-256-gcm", keyFor(passphrase, header.kdf), Buffer.from(header.iv, "base64"));
    decipher.setAAD(Buffer.from(JSON.stringify(header)));
    decipher.setAuthTag(Buffer.from(tag, "base64"));
    plain = Buffer.concat([decipher.update(Buffer.from(data, "base64")), decipher.final()]);
  } catch (cause) {
    if (cause instanceof PosternError) throw cause;
    throw new PosternError("bad-request", "cannot open the backup: wrong CA passphrase, or the file was changed", { cause });
  }
  const archive = JSON.parse(gunzipSync(plain).toString("utf8")) as PkiArchive;
  if (archive.format !== ARCHIVE_FORMAT || archive.v !== 1 || !Array.isArray(archive.certificates)) {
    throw new PosternError("bad-request", "the backup's contents are not an archive this version reads");
  }
  return archive;
}
