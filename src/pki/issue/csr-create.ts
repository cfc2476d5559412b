/**
 * Builds a PKCS#10 certificate request (RFC 2986) on the client side: the private key never
 * leaves the caller. The request carries only the names it is given (an identity and roles),
 * no other extension, so it passes the gateway's CSR policy (`validateCsr`) unchanged.
 */
import { createPublicKey, sign, type KeyObject } from "node:crypto";
import { bitString, ctx, oid, seq, set, tlv, uint } from "../der/index.js";
import { derToPem, encodeName, subjectAltName } from "./tbs.js";
import { signatureSchemeFor } from "../keys/index.js";

export interface CreateCsrOptions {
  /** The key the certificate is for; signs the request (proof of possession). */
  privateKey: KeyObject;
  /**
   * The identity to ask for: a URI ("spiffe://...", sent as SAN URI with CN = its last path
   * segment) or a plain name (CN). Absent: a request with an empty subject, for enrollment or
   * renewal where the token or the current certificate binds the identity.
   */
  identity?: string | undefined;
  /** Roles to ask for, as OU attributes. */
  roles?: readonly string[] | undefined;
}

const EXTENSION_REQUEST = "1.2.840.113549.1.9.14";
const URI_IDENTITY = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//;

/** A signed CSR as PEM ("CERTIFICATE REQUEST"). Throws RangeError on names that are not printable ASCII. */
export function createCsr(o: CreateCsrOptions): string {
  const identity = o.identity;
  const isUri = identity !== undefined && URI_IDENTITY.test(identity);
  const commonName = identity === undefined ? undefined : isUri ? identity.split("/").filter((s) => s !== "").pop() : identity;
  const subject = encodeName({
    organizationalUnits: o.roles ?? [],
    ...(commonName !== undefined ? { commonName } : {}),
  });
  const san = isUri ? subjectAltName({ uris: [identity] }) : undefined;
  const attributes = san ? [seq(oid(EXTENSION_REQUEST), set(seq(san)))] : [];
  const spki = new Uint8Array(createPublicKey(o.privateKey).export({ format: "der", type: "spki" }));
  const info = seq(uint(0), subject, spki, tlv(ctx(0, true), ...attributes));
  const scheme = signatureSchemeFor(o.privateKey);
  const signature = sign(scheme.hash, info, o.privateKey);
  return derToPem(seq(info, scheme.algorithmIdentifier, bitString(new Uint8Array(signature))), "CERTIFICATE REQUEST");
}
