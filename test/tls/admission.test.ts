import t from "tap";
import { admitPeer, peerExpiresAtMs, type AdmissionPolicy, type HandshakeFacts } from "../../src/tls/admission.js";

const NOW = Date.parse("2026-06-01T00:00:00Z");
const identity = { id: "spiffe://postern.local/client/a", roles: ["client"], serial: "0a", fingerprint: "fp", notAfterMs: NOW + 3_600_000 };
const der = Buffer.from("leaf");

function facts(overrides: Partial<HandshakeFacts> = {}, certificate: Partial<NonNullable<HandshakeFacts["certificate"]>> = {}): HandshakeFacts {
  return { authorized: true, authorizationError: undefined, certificate: { der, identity, notBeforeMs: NOW - 60_000, ...certificate }, ...overrides };
}

function policy(overrides: Partial<AdmissionPolicy> = {}): AdmissionPolicy {
  return { nowMs: NOW, anonymous: false, expiredGraceSeconds: 0, isRevoked: () => false, chainsToCa: () => true, ...overrides };
}

const reason = (a: ReturnType<typeof admitPeer>) => (a.admitted ? "admitted" : a.reason);

t.test("a valid certificate that OpenSSL verified is admitted with its identity", async (t) => {
  const admission = admitPeer(facts(), policy());
  t.same(admission, { admitted: true, peer: { identity, certDer: der } });
});

t.test("no certificate: refused as no_cert, or admitted anonymously where the listener allows it", async (t) => {
  t.equal(reason(admitPeer(facts({ certificate: undefined }), policy())), "no_cert");
  t.same(admitPeer(facts({ certificate: undefined }), policy({ anonymous: true })), { admitted: true, peer: undefined });
});

t.test("a presented certificate must be good even where anonymous clients are allowed", async (t) => {
  t.equal(reason(admitPeer(facts({ authorized: false, authorizationError: "UNABLE_TO_GET_ISSUER_CERT" }), policy({ anonymous: true }))), "unknown_ca");
});

t.test("OpenSSL's chain errors name unknown_ca; CRL revocation names revoked; anything else is other", async (t) => {
  for (const code of ["UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "SELF_SIGNED_CERT_IN_CHAIN", "CERT_SIGNATURE_FAILURE"]) {
    t.equal(reason(admitPeer(facts({ authorized: false, authorizationError: code }), policy())), "unknown_ca", code);
  }
  t.equal(reason(admitPeer(facts({ authorized: false, authorizationError: "CERT_REVOKED" }), policy())), "revoked");
  t.equal(reason(admitPeer(facts({ authorized: false, authorizationError: "INVALID_PURPOSE" }), policy())), "other");
});

t.test("a certificate without an identity is refused", async (t) => {
  t.equal(reason(admitPeer(facts({}, { identity: undefined }), policy())), "other");
});

t.test("revocation is checked on every connection, from the index", async (t) => {
  t.equal(reason(admitPeer(facts(), policy({ isRevoked: (s) => s === "0a" }))), "revoked");
});

t.test("expiry is checked against the clock, not taken from OpenSSL's (possibly resumed) verdict", async (t) => {
  t.equal(reason(admitPeer(facts(), policy({ nowMs: identity.notAfterMs + 1 }))), "expired");
});

t.test("not yet valid is checked against the clock", async (t) => {
  t.equal(reason(admitPeer(facts({}, { notBeforeMs: NOW + 1000 }), policy())), "not_yet_valid");
});

t.test("within the renewal grace an expired certificate is admitted, marked expired", async (t) => {
  const admission = admitPeer(facts(), policy({ nowMs: identity.notAfterMs + 1000, expiredGraceSeconds: 60 }));
  t.same(admission, { admitted: true, peer: { identity, certDer: der, expired: true } });
  t.equal(reason(admitPeer(facts(), policy({ nowMs: identity.notAfterMs + 61_000, expiredGraceSeconds: 60 }))), "expired", "not after it");
});

t.test("an expired certificate must chain to our CA: OpenSSL's CERT_HAS_EXPIRED hides a bad signature", async (t) => {
  const expired = facts({ authorized: false, authorizationError: "CERT_HAS_EXPIRED" });
  const later = { nowMs: identity.notAfterMs + 1000, expiredGraceSeconds: 60 };
  t.equal(reason(admitPeer(expired, policy({ ...later, chainsToCa: () => false }))), "unknown_ca");
  t.equal(reason(admitPeer(expired, policy({ ...later, chainsToCa: () => true }))), "admitted");
});

t.test("a revoked certificate stays refused within the renewal grace", async (t) => {
  t.equal(reason(admitPeer(facts(), policy({ nowMs: identity.notAfterMs + 1000, expiredGraceSeconds: 60, isRevoked: () => true }))), "revoked");
});

t.test("a connection's end: notAfter, or the end of the grace it was admitted with", async (t) => {
  t.equal(peerExpiresAtMs({ identity, certDer: der }, 60), identity.notAfterMs);
  t.equal(peerExpiresAtMs({ identity, certDer: der, expired: true }, 60), identity.notAfterMs + 60_000);
});
