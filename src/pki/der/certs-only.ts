import { ctx, oid, seq, set, tlv, tlvOf, uint, type Bytes } from "./der.js";

const ID_SIGNED_DATA = "1.2.840.113549.1.7.2";
const ID_DATA = "1.2.840.113549.1.7.1";

/**
 * A certs-only CMS SignedData (RFC 5652; the "Simple PKI Response" of RFC 5272 §4.1, what
 * `openssl pkcs7 -print_certs` reads): the certificates, in the order given, with no content,
 * no digest algorithm and no signer. EST (RFC 7030) answers with it. Built from each
 * certificate's DER as it is: @peculiar/x509's `X509Certificates.export` writes an empty
 * eContent, which RFC 5272 says must be absent, and re-encodes every certificate.
 */
export function certsOnlyCms(certificatesDer: readonly Uint8Array[]): Bytes {
  const signedData = seq(uint(1), set(), seq(oid(ID_DATA)), tlvOf(ctx(0, true), certificatesDer), set());
  return seq(oid(ID_SIGNED_DATA), tlv(ctx(0, true), signedData));
}
