/**
 * PKCS#10 (RFC 2986) parsing with a strict DER reader and self-signature verification with
 * node:crypto. Any malformed input, unknown signature algorithm or failed signature is a
 * `csr-invalid` PosternError; nothing here decides policy.
 */
import { verify, constants, type KeyObject } from "node:crypto";
import { PosternError } from "../../errors.js";
import { DerError, TAG, children, decodeBitString, decodeBoolean, decodeOid, decodeString, expectChildren, readOne, type DerNode, publicKeyFromSpki } from "../der/index.js";
import { OID } from "./tbs.js";

/** Larger CSRs are refused before parsing. */
export const MAX_CSR_BYTES = 16 * 1024;

export interface ParsedCsr {
  der: Uint8Array;
  /** SubjectPublicKeyInfo DER exactly as signed in the CSR (node parsed it; it goes into the certificate). */
  spki: Uint8Array;
  publicKey: KeyObject;
  /** node's asymmetricKeyType: "ec", "ed25519", "rsa", ... */
  keyType: string;
  /** RSA modulus bits, EC curve bits, 256 for Ed25519. */
  keyBits: number;
  namedCurve?: string;
  rsaPublicExponent?: bigint;
  commonNames: string[];
  organizationalUnits: string[];
  dnsNames: string[];
  ipAddresses: string[];
  uris: string[];
  /** GeneralName kinds Postern never certifies (email, otherName, directoryName, ...). */
  otherSanKinds: number[];
  /** basicConstraints cA = TRUE was requested. */
  requestsCa: boolean;
  /** keyUsage keyCertSign or cRLSign was requested. */
  requestsCertSign: boolean;
  /** OIDs of every requested extension. */
  extensionOids: string[];
}

const EXTENSION_REQUEST = "1.2.840.113549.1.9.14";
const KU_KEY_CERT_SIGN = 5;
const KU_CRL_SIGN = 6;

type SigAlg = { family: "ec" | "rsa" | "rsa-pss" | "ed25519"; hash: string | null };
const SIGNATURE_ALGORITHMS: Readonly<Record<string, SigAlg>> = {
  "1.2.840.10045.4.3.2": { family: "ec", hash: "sha256" },
  "1.2.840.10045.4.3.3": { family: "ec", hash: "sha384" },
  "1.2.840.10045.4.3.4": { family: "ec", hash: "sha512" },
  "1.3.101.112": { family: "ed25519", hash: null },
  "1.2.840.113549.1.1.11": { family: "rsa", hash: "sha256" },
  "1.2.840.113549.1.1.12": { family: "rsa", hash: "sha384" },
  "1.2.840.113549.1.1.13": { family: "rsa", hash: "sha512" },
};

const invalid = (detail: string, cause?: unknown): PosternError => new PosternError("csr-invalid", detail, { cause });

/** PEM ("CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST") or DER to DER. */
export function csrDer(input: string | Uint8Array): Uint8Array {
  if (typeof input !== "string") return input;
  const m = /-----BEGIN (NEW )?CERTIFICATE REQUEST-----([A-Za-z0-9+/=\s]+)-----END (NEW )?CERTIFICATE REQUEST-----/.exec(input);
  if (!m || m[2] === undefined) throw invalid("not a PEM certificate request");
  return new Uint8Array(Buffer.from(m[2].replace(/\s+/g, ""), "base64"));
}

/** Parses a CSR and verifies its self-signature. Throws csr-invalid. */
export function parseCsr(input: string | Uint8Array): ParsedCsr {
  const der = csrDer(input);
  if (der.length > MAX_CSR_BYTES) throw invalid(`CSR larger than ${MAX_CSR_BYTES} bytes`);
  try {
    return parseCsrDer(der);
  } catch (error) {
    if (error instanceof PosternError) throw error;
    throw invalid("malformed CSR", error);
  }
}

function parseCsrDer(der: Uint8Array): ParsedCsr {
  const [info, sigAlgNode, sigNode] = expectChildren(readOne(der, TAG.sequence), 3) as [DerNode, DerNode, DerNode];
  const infoFields = expectChildren(info, 3, 4);
  const [version, subject, spkiNode, attrs] = infoFields as [DerNode, DerNode, DerNode, DerNode | undefined];
  if (version.tag !== TAG.integer || version.content.length !== 1 || version.content[0] !== 0) throw invalid("CSR version must be 1");
  if (subject.tag !== TAG.sequence || spkiNode.tag !== TAG.sequence) throw new DerError("bad CertificationRequestInfo");
  let publicKey: KeyObject;
  try {
    publicKey = publicKeyFromSpki(spkiNode.bytes);
  } catch (cause) {
    throw invalid("unreadable public key", cause);
  }
  verifySelfSignature(info.bytes, sigAlgNode, sigNode, publicKey);
  const names = readSubject(subject);
  const ext = readExtensionRequest(attrs);
  const details = publicKey.asymmetricKeyDetails ?? {};
  const csr: ParsedCsr = {
    der,
    spki: spkiNode.bytes,
    publicKey,
    keyType: publicKey.asymmetricKeyType ?? "unknown",
    keyBits: keyBits(publicKey),
    ...names,
    ...ext,
  };
  if (details.namedCurve !== undefined) csr.namedCurve = details.namedCurve;
  if (details.publicExponent !== undefined) csr.rsaPublicExponent = details.publicExponent;
  return csr;
}

function keyBits(key: KeyObject): number {
  const d = key.asymmetricKeyDetails ?? {};
  if (d.modulusLength !== undefined) return d.modulusLength;
  if (d.namedCurve === "prime256v1") return 256;
  if (d.namedCurve === "secp384r1") return 384;
  if (d.namedCurve === "secp521r1") return 521;
  if (key.asymmetricKeyType === "ed25519") return 256;
  return 0;
}

function verifySelfSignature(tbs: Uint8Array, algNode: DerNode, sigNode: DerNode, key: KeyObject): void {
  const [algOid, params] = expectChildren(algNode, 1, 2) as [DerNode, DerNode | undefined];
  const alg = SIGNATURE_ALGORITHMS[decodeOid(algOid)];
  if (!alg) throw invalid("unsupported CSR signature algorithm");
  if (params !== undefined && !(alg.family === "rsa" && params.tag === TAG.null && params.content.length === 0)) {
    throw invalid("unexpected signature algorithm parameters");
  }
  const keyType = key.asymmetricKeyType;
  if (keyType !== alg.family) throw invalid("signature algorithm does not match the key type");
  const { unusedBits, bytes } = decodeBitString(sigNode);
  if (unusedBits !== 0) throw invalid("bad signature encoding");
  const ok = alg.family === "rsa"
    ? verify(alg.hash, tbs, { key, padding: constants.RSA_PKCS1_PADDING }, bytes)
    : verify(alg.hash, tbs, key, bytes);
  if (!ok) throw invalid("the CSR signature does not verify");
}

function readSubject(subject: DerNode): { commonNames: string[]; organizationalUnits: string[] } {
  const commonNames: string[] = [];
  const organizationalUnits: string[] = [];
  for (const rdn of children(subject)) {
    if (rdn.tag !== TAG.set) throw new DerError("bad RDN");
    for (const atv of children(rdn)) {
      const [type, value] = expectChildren(atv, 2) as [DerNode, DerNode];
      const oid = decodeOid(type);
      if (oid === OID.commonName) commonNames.push(decodeString(value));
      else if (oid === OID.organizationalUnit) organizationalUnits.push(decodeString(value));
    }
  }
  return { commonNames, organizationalUnits };
}

type ExtensionFields = Pick<ParsedCsr, "dnsNames" | "ipAddresses" | "uris" | "otherSanKinds" | "requestsCa" | "requestsCertSign" | "extensionOids">;

function readExtensionRequest(attrs: DerNode | undefined): ExtensionFields {
  const out: ExtensionFields = {
    dnsNames: [], ipAddresses: [], uris: [], otherSanKinds: [], requestsCa: false, requestsCertSign: false, extensionOids: [],
  };
  if (attrs === undefined) return out;
  if (attrs.tag !== 0xa0) throw new DerError("bad attributes");
  for (const attr of children(attrs)) {
    const [type, values] = expectChildren(attr, 2) as [DerNode, DerNode];
    if (decodeOid(type) !== EXTENSION_REQUEST) continue;
    const [exts] = expectChildren(values, 1) as [DerNode];
    for (const ext of children(exts)) readExtension(ext, out);
  }
  return out;
}

function readExtension(ext: DerNode, out: ExtensionFields): void {
  const fields = expectChildren(ext, 2, 3);
  const oid = decodeOid(fields[0] as DerNode);
  if (fields.length === 3) decodeBoolean(fields[1] as DerNode);
  const valueNode = fields[fields.length - 1] as DerNode;
  if (valueNode.tag !== TAG.octetString) throw new DerError("bad extension value");
  if (out.extensionOids.includes(oid)) throw invalid(`extension ${oid} requested twice`);
  out.extensionOids.push(oid);
  const value = valueNode.content;
  if (oid === OID.basicConstraints) {
    const bc = children(readOne(value, TAG.sequence));
    if (bc[0]?.tag === TAG.boolean && decodeBoolean(bc[0])) out.requestsCa = true;
  } else if (oid === OID.keyUsage) {
    const { bytes } = decodeBitString(readOne(value));
    const bit = (n: number): boolean => (((bytes[n >> 3] ?? 0) >> (7 - (n & 7))) & 1) === 1;
    if (bit(KU_KEY_CERT_SIGN) || bit(KU_CRL_SIGN)) out.requestsCertSign = true;
  } else if (oid === OID.subjectAltName) {
    for (const gn of children(readOne(value, TAG.sequence))) readGeneralName(gn, out);
  }
}

function readGeneralName(gn: DerNode, out: ExtensionFields): void {
  const ascii = (): string => {
    for (const b of gn.content) if (b < 0x20 || b > 0x7e) throw invalid("non-ASCII name in subjectAltName");
    return Buffer.from(gn.content).toString("latin1");
  };
  if (gn.tag === 0x82) out.dnsNames.push(ascii());
  else if (gn.tag === 0x86) out.uris.push(ascii());
  else if (gn.tag === 0x87) out.ipAddresses.push(ipText(gn.content));
  else out.otherSanKinds.push(gn.tag & 0x1f);
}

/** Canonical text of a 4- or 16-byte address (IPv6 lowercase with the longest zero run as "::"). */
export function ipText(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join(".");
  if (bytes.length !== 16) throw invalid("bad IP address in subjectAltName");
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i] as number) << 8) | (bytes[i + 1] as number));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}
