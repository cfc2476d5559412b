/**
 * RFC 6960 OCSP responder as a pure function of the request bytes: no HTTP, no store. The
 * issuing CA answers for the certificates it issued and signs with its own key (RFC 6960
 * §4.2.2.2: the CA itself is an authorized responder), so no delegated responder cert exists.
 */
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import { CRLReason, Extension } from "@peculiar/asn1-x509";
import {
  CertID, CertStatus, OCSPRequest, ResponderID, ResponseData, RevokedInfo, SingleResponse,
  id_pkix_ocsp_basic, id_pkix_ocsp_nonce,
} from "@peculiar/asn1-ocsp";
import { createHash } from "node:crypto";
import { REVOCATION_REASONS, type RevocationReason } from "../store/index.js";
import { TAG, bitString, ctx, octets, oid, readOne, seq, tlv, toHex } from "../der/index.js";
import { issuerFacts, issuerSigner, type SigningIssuer } from "./sign.js";

/** What the store knows about one serial. */
export type OcspCertStatus =
  | { status: "good" }
  | { status: "revoked"; revokedAtMs: number; reason: RevocationReason }
  | { status: "unknown" };

export interface RespondOcspInput {
  requestDer: Uint8Array;
  issuer: SigningIssuer;
  /** Looks a serial up (lowercase hex exactly as encoded in the certificate). */
  lookup: (serialHex: string) => Promise<OcspCertStatus>;
  nowMs: number;
  /** nextUpdate - thisUpdate of each answer. */
  validitySeconds: number;
}

/** Requests larger than this, or with more entries, are refused as malformed (DoS bound). */
export const MAX_OCSP_REQUEST_BYTES = 16 * 1024;
export const MAX_OCSP_REQUEST_ENTRIES = 16;

const HASHES: Record<string, string> = {
  "1.3.14.3.2.26": "sha1",
  "2.16.840.1.101.3.4.2.1": "sha256",
  "2.16.840.1.101.3.4.2.2": "sha384",
  "2.16.840.1.101.3.4.2.3": "sha512",
};

/** OCSPResponse with only a status: malformedRequest (1), internalError (2). Unsigned by design. */
const statusOnly = (code: 1 | 2): Uint8Array<ArrayBuffer> => Uint8Array.of(0x30, 0x03, 0x0a, 0x01, code);

/**
 * Answers an OCSP request. Always resolves to a DER OCSPResponse: `malformedRequest` for bytes
 * that do not parse (or exceed the bounds above), `internalError` if `lookup` throws, else a
 * signed BasicOCSPResponse (responderID byKey, the issuing cert in `certs`, the nonce echoed).
 * A CertID naming another issuer, or an unsupported hash, is answered `unknown`, never `good`.
 */
export async function respondOcsp(input: RespondOcspInput): Promise<Uint8Array<ArrayBuffer>> {
  const request = parseRequest(input.requestDer);
  if (!request) return statusOnly(1);
  const facts = issuerFacts(input.issuer.cert);
  const thisUpdate = new Date(Math.floor(input.nowMs / 1000) * 1000);
  const nextUpdate = new Date(thisUpdate.getTime() + Math.max(1, Math.floor(input.validitySeconds)) * 1000);
  let responses: SingleResponse[];
  try {
    responses = await Promise.all(
      request.tbsRequest.requestList.map(async ({ reqCert }) => {
        const status = matchesIssuer(reqCert, facts.subjectDer, facts.publicKeyBytes)
          ? await input.lookup(toHex(new Uint8Array(reqCert.serialNumber)))
          : ({ status: "unknown" } as const);
        return new SingleResponse({ certID: reqCert, certStatus: toCertStatus(status), thisUpdate, nextUpdate });
      }),
    );
  } catch {
    return statusOnly(2);
  }
  const nonce = request.tbsRequest.requestExtensions?.find((e) => e.extnID === id_pkix_ocsp_nonce);
  const responderKeyHash = createHash("sha1").update(facts.publicKeyBytes).digest();
  const data = new ResponseData({
    responderID: new ResponderID({ byKey: new OctetString(responderKeyHash) }),
    producedAt: thisUpdate,
    responses,
    ...(nonce ? { responseExtensions: [new Extension({ extnID: nonce.extnID, critical: false, extnValue: nonce.extnValue })] } : {}),
  });
  const tbs = new Uint8Array(AsnConvert.serialize(data));
  const signer = issuerSigner(input.issuer.privateKey);
  // Assembled by hand so the signed bytes and the issuer certificate are embedded verbatim.
  const basic = seq(
    tbs,
    signer.algorithmDer,
    bitString(signer.sign(tbs)),
    tlv(ctx(0, true), seq(new Uint8Array(input.issuer.cert.rawData))),
  );
  const responseBytes = seq(oid(id_pkix_ocsp_basic), octets(basic));
  return seq(Uint8Array.of(TAG.enumerated, 0x01, 0x00), tlv(ctx(0, true), responseBytes));
}

function parseRequest(der: Uint8Array): OCSPRequest | undefined {
  if (!(der instanceof Uint8Array) || der.length === 0 || der.length > MAX_OCSP_REQUEST_BYTES) return undefined;
  try {
    const req = AsnConvert.parse(der, OCSPRequest);
    const list = req.tbsRequest.requestList;
    if (list.length === 0 || list.length > MAX_OCSP_REQUEST_ENTRIES) return undefined;
    // The parser stops at the end of the outer SEQUENCE: trailing bytes would go unnoticed.
    readOne(der, TAG.sequence);
    return req;
  } catch {
    return undefined;
  }
}

function matchesIssuer(certId: CertID, subjectDer: Uint8Array, publicKeyBytes: Uint8Array): boolean {
  const hash = HASHES[certId.hashAlgorithm.algorithm];
  if (!hash) return false;
  const nameHash = createHash(hash).update(subjectDer).digest();
  const keyHash = createHash(hash).update(publicKeyBytes).digest();
  return nameHash.equals(new Uint8Array(certId.issuerNameHash.buffer)) && keyHash.equals(new Uint8Array(certId.issuerKeyHash.buffer));
}

function toCertStatus(s: OcspCertStatus): CertStatus {
  switch (s.status) {
    case "good":
      return new CertStatus({ good: null });
    case "revoked":
      return new CertStatus({
        revoked: new RevokedInfo({
          revocationTime: new Date(Math.floor(s.revokedAtMs / 1000) * 1000),
          revocationReason: new CRLReason(REVOCATION_REASONS[s.reason]),
        }),
      });
    default:
      return new CertStatus({ unknown: null });
  }
}

/**
 * Decodes the request of an OCSP GET (RFC 6960 Appendix A.1): `<prefix><url-encoded base64 of
 * the DER>`. Returns undefined for another path or anything that is not clean base64, so the
 * caller answers 404 or a malformedRequest response.
 */
export function decodeOcspGetPath(path: string, prefix = "/ocsp/"): Uint8Array<ArrayBuffer> | undefined {
  if (!path.startsWith(prefix)) return undefined;
  const encoded = path.slice(prefix.length);
  if (encoded.length === 0 || encoded.length > 4 * MAX_OCSP_REQUEST_BYTES) return undefined;
  let b64: string;
  try {
    b64 = decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
  // Standard base64 per the RFC; base64url is accepted too, as some clients send it.
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(b64)) return undefined;
  const bytes = Buffer.from(b64, "base64");
  return bytes.length > 0 ? new Uint8Array(bytes) : undefined;
}
