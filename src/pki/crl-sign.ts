/**
 * Signing and issuer facts shared by the CRL builder and the OCSP responder: which X.509
 * signature algorithm a CA key implies, a signature in the form X.509 expects, and the
 * issuer's exact subject/SPKI bytes. node:crypto only; no I/O.
 */
import { createHash, KeyObject, sign } from "node:crypto";
import type { x509 } from "./x509.js";
import { derOid, derSequence, readDerElement } from "./crl-der.js";

/** A CA that signs CRLs or OCSP answers: its certificate and its private key. */
export interface SigningIssuer {
  cert: x509.X509Certificate;
  privateKey: CryptoKey;
}

/** How one key signs: the AlgorithmIdentifier DER and a function producing signature bytes. */
export interface IssuerSigner {
  algorithmDer: Uint8Array;
  sign(data: Uint8Array): Uint8Array;
}

const DER_NULL = Uint8Array.of(0x05, 0x00);
const RSA_OIDS: Record<string, { oid: string; hash: string }> = {
  "SHA-256": { oid: "1.2.840.113549.1.1.11", hash: "sha256" },
  "SHA-384": { oid: "1.2.840.113549.1.1.12", hash: "sha384" },
  "SHA-512": { oid: "1.2.840.113549.1.1.13", hash: "sha512" },
};

/**
 * Picks the signature algorithm from the key: ECDSA P-256 -> ecdsa-with-SHA256, P-384 ->
 * ecdsa-with-SHA384 (DER Ecdsa-Sig-Value, as X.509 requires, not WebCrypto's r||s), Ed25519,
 * RSA -> PKCS#1 v1.5 with the key's hash (SHA-256 by default). Any other key is refused
 * (throws RangeError) rather than guessed.
 */
export function issuerSigner(privateKey: CryptoKey): IssuerSigner {
  let signer = signers.get(privateKey);
  if (!signer) {
    signer = makeSigner(privateKey);
    signers.set(privateKey, signer);
  }
  return signer;
}

/** KeyObject conversion costs more than an ECDSA signature: keep one signer per CA key. */
const signers = new WeakMap<CryptoKey, IssuerSigner>();

function makeSigner(privateKey: CryptoKey): IssuerSigner {
  const key = KeyObject.from(privateKey);
  const type = key.asymmetricKeyType;
  if (type === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const choice =
      curve === "prime256v1" ? { oid: "1.2.840.10045.4.3.2", hash: "sha256" }
      : curve === "secp384r1" ? { oid: "1.2.840.10045.4.3.3", hash: "sha384" }
      : undefined;
    if (!choice) throw new RangeError(`unsupported EC curve ${curve ?? "?"}`);
    return {
      algorithmDer: derSequence(derOid(choice.oid)),
      sign: (data) => new Uint8Array(sign(choice.hash, data, { key, dsaEncoding: "der" })),
    };
  }
  if (type === "ed25519") {
    return {
      algorithmDer: derSequence(derOid("1.3.101.112")),
      sign: (data) => new Uint8Array(sign(null, data, key)),
    };
  }
  if (type === "rsa") {
    const hashName = (privateKey.algorithm as Partial<RsaHashedKeyAlgorithm>).hash?.name ?? "SHA-256";
    const choice = RSA_OIDS[hashName] ?? RSA_OIDS["SHA-256"];
    if (!choice) throw new RangeError("unsupported RSA hash");
    return {
      algorithmDer: derSequence(derOid(choice.oid), DER_NULL),
      sign: (data) => new Uint8Array(sign(choice.hash, data, key)),
    };
  }
  throw new RangeError(`unsupported CA key type ${type ?? "?"}`);
}

/** Exact DER pieces of a certificate that CRLs and OCSP refer to. */
export interface IssuerFacts {
  /** The subject Name exactly as encoded (a CRL's issuer must match it byte for byte). */
  subjectDer: Uint8Array;
  /** The subjectPublicKey BIT STRING content without the unused-bits byte (RFC 6960 key hash). */
  publicKeyBytes: Uint8Array;
  /** SubjectKeyIdentifier if present, else SHA-1 of the public key (RFC 5280 method 1). */
  keyIdentifier: Uint8Array;
}

const facts = new WeakMap<object, IssuerFacts>();

/** Reads subject, public key and key identifier from the certificate's DER (cached per cert). */
export function issuerFacts(cert: x509.X509Certificate): IssuerFacts {
  const cached = facts.get(cert);
  if (cached) return cached;
  const der = new Uint8Array(cert.rawData);
  const certSeq = readDerElement(der, 0);
  const tbs = readDerElement(der, certSeq.contentStart);
  let el = readDerElement(der, tbs.contentStart);
  if (el.tag === 0xa0) el = readDerElement(der, el.end); // version
  const sigAlg = readDerElement(der, el.end); // el was the serial
  const issuer = readDerElement(der, sigAlg.end);
  const validity = readDerElement(der, issuer.end);
  const subject = readDerElement(der, validity.end);
  const spki = readDerElement(der, subject.end);
  const spkiAlg = readDerElement(der, spki.contentStart);
  const bitString = readDerElement(der, spkiAlg.end);
  const publicKeyBytes = der.slice(bitString.contentStart + 1, bitString.contentEnd);
  let keyIdentifier: Uint8Array | undefined;
  for (let at = spki.end; at < tbs.contentEnd; ) {
    const field = readDerElement(der, at);
    if (field.tag === 0xa3) keyIdentifier = findSubjectKeyId(der, field.contentStart);
    at = field.end;
  }
  const result: IssuerFacts = {
    subjectDer: der.slice(validity.end, subject.end),
    publicKeyBytes,
    keyIdentifier: keyIdentifier ?? new Uint8Array(createHash("sha1").update(publicKeyBytes).digest()),
  };
  facts.set(cert, result);
  return result;
}

const SKI_OID = derOid("2.5.29.14");

function findSubjectKeyId(der: Uint8Array, extsStart: number): Uint8Array | undefined {
  const exts = readDerElement(der, extsStart);
  for (let at = exts.contentStart; at < exts.contentEnd; ) {
    const ext = readDerElement(der, at);
    const oid = readDerElement(der, ext.contentStart);
    const oidBytes = der.subarray(ext.contentStart, oid.end);
    if (oidBytes.length === SKI_OID.length && oidBytes.every((b, i) => b === SKI_OID[i])) {
      let value = readDerElement(der, oid.end);
      if (value.tag === 0x01) value = readDerElement(der, value.end); // critical flag
      const inner = readDerElement(der, value.contentStart);
      return der.slice(inner.contentStart, inner.contentEnd);
    }
    at = ext.end;
  }
  return undefined;
}
