/**
 * Signing and issuer facts shared by the CRL builder and the OCSP responder: which X.509
 * signature algorithm a CA key implies, a signature in the form X.509 expects, and the
 * issuer's exact subject/SPKI bytes. node:crypto only; no I/O.
 */
import { createHash, KeyObject, sign } from "node:crypto";
import { type x509, DER_NULL, DerError, TAG, children, ctx, decodeBitString, expectChildren, oid, readOne, seq, type DerNode } from "../der/index.js";

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
      algorithmDer: seq(oid(choice.oid)),
      sign: (data) => new Uint8Array(sign(choice.hash, data, { key, dsaEncoding: "der" })),
    };
  }
  if (type === "ed25519") {
    return {
      algorithmDer: seq(oid("1.3.101.112")),
      sign: (data) => new Uint8Array(sign(null, data, key)),
    };
  }
  if (type === "rsa") {
    const hashName = (privateKey.algorithm as Partial<RsaHashedKeyAlgorithm>).hash?.name ?? "SHA-256";
    const choice = RSA_OIDS[hashName] ?? RSA_OIDS["SHA-256"];
    if (!choice) throw new RangeError("unsupported RSA hash");
    return {
      algorithmDer: seq(oid(choice.oid), DER_NULL),
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

/**
 * Reads subject, public key and key identifier from the certificate's DER (cached per cert).
 * Throws DerError if the certificate is not strict DER.
 */
export function issuerFacts(cert: x509.X509Certificate): IssuerFacts {
  const cached = facts.get(cert);
  if (cached) return cached;
  const tbs = expectChildren(readOne(new Uint8Array(cert.rawData), TAG.sequence), 3)[0] as DerNode;
  const fields = children(tbs);
  const first = fields[0]?.tag === ctx(0, true) ? 1 : 0; // version
  // serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, then optional fields.
  const subject = fields[first + 4];
  const spki = fields[first + 5];
  if (!subject || !spki) throw new DerError("truncated certificate");
  const [, bits] = expectChildren(spki, 2);
  const publicKeyBytes = decodeBitString(bits as DerNode).bytes.slice();
  let keyIdentifier: Uint8Array | undefined;
  for (const field of fields.slice(first + 6)) {
    if (field.tag === ctx(3, true)) keyIdentifier = findSubjectKeyId(field);
  }
  const result: IssuerFacts = {
    subjectDer: subject.bytes.slice(),
    publicKeyBytes,
    keyIdentifier: keyIdentifier ?? new Uint8Array(createHash("sha1").update(publicKeyBytes).digest()),
  };
  facts.set(cert, result);
  return result;
}

const SKI_OID = oid("2.5.29.14");

function findSubjectKeyId(explicitExtensions: DerNode): Uint8Array | undefined {
  const [exts] = expectChildren(explicitExtensions, 1);
  for (const ext of children(exts as DerNode)) {
    const parts = expectChildren(ext, 2, 3); // extnID, critical DEFAULT FALSE, extnValue
    const extnId = (parts[0] as DerNode).bytes;
    if (extnId.length === SKI_OID.length && extnId.every((b, i) => b === SKI_OID[i])) {
      const extnValue = parts[parts.length - 1] as DerNode;
      return readOne(extnValue.content, TAG.octetString).content.slice();
    }
  }
  return undefined;
}
