/**
 * What issuance needs from an issuing CA, derived once per CA object and cached: the signing
 * KeyObject (node:crypto signs synchronously in tens of microseconds), its X.509 signature
 * scheme, the exact subject Name DER and the key identifier leaves point back to.
 */
import { KeyObject } from "node:crypto";
import { children, expectChildren, readOne, TAG, type DerNode, x509 } from "../der/index.js";
import { keyIdentifierOf } from "./tbs.js";
import { signatureSchemeFor, type SignatureScheme } from "../keys/index.js";

/** An issuing CA: the certificate, its private key, and the PEM to send after a leaf it signs. */
export interface IssuingCa {
  cert: x509.X509Certificate;
  privateKey: CryptoKey;
  /** Certificates that follow a leaf in a chain (the issuing CA; never the root). */
  chainPem: string;
}

export interface IssuerContext {
  key: KeyObject;
  scheme: SignatureScheme;
  /** The issuer certificate's subject Name, byte for byte. */
  name: Uint8Array;
  keyId: Uint8Array;
  notAfterMs: number;
}

const contexts = new WeakMap<IssuingCa, IssuerContext>();

export function issuerContext(ca: IssuingCa): IssuerContext {
  let ctx = contexts.get(ca);
  if (!ctx) {
    const key = KeyObject.from(ca.privateKey);
    const raw = new Uint8Array(ca.cert.rawData);
    const tbsFields = tbsChildren(raw);
    const ski = ca.cert.getExtension(x509.SubjectKeyIdentifierExtension);
    const spki = tbsFields.spki.bytes;
    ctx = {
      key,
      scheme: signatureSchemeFor(key),
      name: tbsFields.subject.bytes,
      keyId: ski ? Uint8Array.from(Buffer.from(ski.keyId, "hex")) : keyIdentifierOf(spki),
      notAfterMs: ca.cert.notAfter.getTime(),
    };
    contexts.set(ca, ctx);
  }
  return ctx;
}

/** The subject and SPKI elements of a certificate's TBSCertificate. */
export function tbsChildren(certDer: Uint8Array): { subject: DerNode; spki: DerNode; issuer: DerNode } {
  const [tbs] = expectChildren(readOne(certDer, TAG.sequence), 3);
  const fields = children(tbs as DerNode);
  const start = fields[0]?.tag === 0xa0 ? 1 : 0;
  const issuer = fields[start + 2];
  const subject = fields[start + 4];
  const spki = fields[start + 5];
  if (!issuer || !subject || !spki) throw new RangeError("not a certificate");
  return { issuer, subject, spki };
}
