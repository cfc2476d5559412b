import { X509Certificate } from "node:crypto";

/**
 * Builds `chainsToCa(der)`: true when the certificate's signature verifies under a CA of the
 * bundle, and that CA's under the next, up to a self-signed certificate of the bundle. Only
 * signatures and issuer names are checked (validity is the admission rule's business). Used
 * where OpenSSL's verdict hides the signature check (an expired certificate).
 */
export function caChainVerifier(caBundlePem: string): (der: Buffer) => boolean {
  const authorities = splitPem(caBundlePem).map((pem) => new X509Certificate(pem));
  return (der) => {
    let current: X509Certificate;
    try {
      current = new X509Certificate(der);
    } catch {
      return false;
    }
    for (let depth = 0; depth < 5; depth++) {
      const issuer = authorities.find((ca) => current.checkIssued(ca) && current.verify(ca.publicKey));
      if (!issuer) return false;
      if (issuer.checkIssued(issuer) && issuer.verify(issuer.publicKey)) return true;
      current = issuer;
    }
    return false;
  };
}

function splitPem(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}
