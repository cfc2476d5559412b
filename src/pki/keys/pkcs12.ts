/**
 * PKCS#12 (RFC 7292) bundles for tools that need one: server-side key generation, then
 * key + leaf + chain in a password-protected PFX that OpenSSL 3, curl and Node (`pfx`) read.
 *
 * node-forge's high-level PKCS#12 is RSA-only, so the PFX is laid out here on DER Postern
 * already has. The key bag is node:crypto's encrypted PKCS#8 (PBES2: PBKDF2-HMAC-SHA256, 2048
 * iterations, AES-256-CBC); certificates are in a plain data bag (they are public); the MAC is
 * HMAC-SHA256 keyed by the RFC 7292 Appendix B derivation, the one piece taken from node-forge.
 * This is OpenSSL 3's default profile, not RC2/3DES.
 */
import { createHash, createHmac, randomBytes, type KeyObject } from "node:crypto";
import { createRequire } from "node:module";
import { PosternError } from "../../errors.js";
import { DER_NULL, ctx, octets, oid, seq, set, tlv, uint, type Bytes } from "../der/index.js";
import { issueLeafDer, type IssuedCertificate, type IssuingCa, identityAllowed, keyAllowed, keyFamilyOf, lifetimeFor, rolesAllowed, type CertificateProfile } from "../issue/index.js";
import { generateKeyPair, spkiOf, type KeyAlgorithm } from "./keys.js";

const requireCjs = createRequire(import.meta.url);

/**
 * node-forge, loaded the first time a PFX is made (a gateway that never makes one does not pay
 * its ~40 ms of loading). It is CommonJS and its typings declare no default export: require
 * gives the typed namespace.
 */
function forge(): typeof import("node-forge") {
  return requireCjs("node-forge") as typeof import("node-forge");
}

const OIDS = {
  data: "1.2.840.113549.1.7.1",
  pkcs8ShroudedKeyBag: "1.2.840.113549.1.12.10.1.2",
  certBag: "1.2.840.113549.1.12.10.1.3",
  x509Certificate: "1.2.840.113549.1.9.22.1",
  friendlyName: "1.2.840.113549.1.9.20",
  localKeyId: "1.2.840.113549.1.9.21",
  sha256: "2.16.840.1.101.3.4.2.1",
} as const;

export const PKCS12_MAC_ITERATIONS = 2048;

export interface Pkcs12Contents {
  privateKey: KeyObject;
  /** The leaf certificate DER. */
  certificateDer: Uint8Array;
  /** Issuing CA(s) after the leaf; the root is optional. */
  chainDer?: readonly Uint8Array[];
  /** Printable ASCII, at least one character. */
  password: string;
  friendlyName?: string;
  macIterations?: number;
}

/** Builds a PFX. Throws bad-request for a password PBES2 and the MAC would read differently. */
export function buildPkcs12(c: Pkcs12Contents): Bytes {
  if (!/^[\x20-\x7e]{1,256}$/.test(c.password)) {
    throw new PosternError("bad-request", "the PKCS#12 password must be 1-256 printable ASCII characters");
  }
  const keyId = new Uint8Array(createHash("sha1").update(c.certificateDer).digest());
  const attributes = [attribute(OIDS.localKeyId, octets(keyId))];
  if (c.friendlyName !== undefined) attributes.push(attribute(OIDS.friendlyName, bmpString(c.friendlyName)));
  const attrSet = set(...attributes);
  const encryptedKey = new Uint8Array(
    c.privateKey.export({ format: "der", type: "pkcs8", cipher: "aes-256-cbc", passphrase: c.password }),
  );
  const keyBag = seq(oid(OIDS.pkcs8ShroudedKeyBag), tlv(ctx(0, true), encryptedKey), attrSet);
  const certBags = [certBag(c.certificateDer, attrSet), ...(c.chainDer ?? []).map((d) => certBag(d))];
  const authSafe = seq(dataContentInfo(seq(...certBags)), dataContentInfo(seq(keyBag)));
  const iterations = c.macIterations ?? PKCS12_MAC_ITERATIONS;
  const salt = new Uint8Array(randomBytes(16));
  const macKey = pkcs12MacKey(c.password, salt, iterations);
  const mac = new Uint8Array(createHmac("sha256", macKey).update(authSafe).digest());
  const macData = seq(seq(seq(oid(OIDS.sha256), DER_NULL), octets(mac)), octets(salt), uint(iterations));
  return seq(uint(3), dataContentInfo(authSafe), macData);
}

function attribute(type: string, value: Uint8Array): Bytes {
  return seq(oid(type), set(value));
}

function bmpString(s: string): Bytes {
  const out = new Uint8Array(s.length * 2);
  for (let i = 0; i < s.length; i++) {
    out[2 * i] = s.charCodeAt(i) >> 8;
    out[2 * i + 1] = s.charCodeAt(i) & 0xff;
  }
  return tlv(0x1e, out);
}

function certBag(der: Uint8Array, attrs?: Uint8Array): Bytes {
  const value = tlv(ctx(0, true), seq(oid(OIDS.x509Certificate), tlv(ctx(0, true), octets(der))));
  return attrs ? seq(oid(OIDS.certBag), value, attrs) : seq(oid(OIDS.certBag), value);
}

function dataContentInfo(content: Uint8Array): Bytes {
  return seq(oid(OIDS.data), tlv(ctx(0, true), octets(content)));
}

/** RFC 7292 Appendix B.2 key derivation (ID 3 = MAC key) with SHA-256, via node-forge. */
function pkcs12MacKey(password: string, salt: Uint8Array, iterations: number): Buffer {
  const { md, pkcs12, util } = forge();
  const key = pkcs12.generateKey(password, util.createBuffer(Buffer.from(salt).toString("binary")), 3, iterations, 32, md.sha256.create());
  return Buffer.from(key.getBytes(), "binary");
}

/** PEM blocks of certificates to DER, in order. */
export function pemCertificatesToDer(pem: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const m of pem.matchAll(/-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/g)) {
    out.push(new Uint8Array(Buffer.from((m[1] ?? "").replace(/\s+/g, ""), "base64")));
  }
  return out;
}

export interface IssuePkcs12Options {
  issuer: IssuingCa;
  identity: string;
  roles?: readonly string[];
  keyAlgorithm: KeyAlgorithm;
  password: string;
  /** When given, identity, roles, key type and lifetime are checked against it. */
  profile?: CertificateProfile;
  lifetimeSeconds?: number;
  usage?: "client" | "server";
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  now?: () => number;
  crlUrl?: string;
  ocspUrl?: string;
}

/**
 * Server-side key generation: a fresh key of `keyAlgorithm`, a leaf for it, and the PFX
 * (key + leaf + issuing CA). The private key exists only inside the returned bundle.
 */
export async function issuePkcs12(o: IssuePkcs12Options): Promise<{ pfx: Bytes; certificate: IssuedCertificate }> {
  const roles = [...(o.roles ?? [])];
  let lifetimeSeconds = o.lifetimeSeconds ?? 86_400;
  if (o.profile) {
    if (!identityAllowed(o.profile, o.identity) || !rolesAllowed(o.profile, roles)) {
      throw new PosternError("csr-forbidden-name", `profile ${o.profile.name} does not allow this identity or role`);
    }
    if (!keyAllowed(o.profile, keyFamilyOf(o.keyAlgorithm))) {
      throw new PosternError("csr-weak-key", `${o.keyAlgorithm} is not allowed by profile ${o.profile.name}`);
    }
    lifetimeSeconds = lifetimeFor(o.profile, o.lifetimeSeconds);
  }
  const { privateKey, publicKey } = await generateKeyPair(o.keyAlgorithm);
  const certificate = issueLeafDer({
    issuer: o.issuer,
    spki: spkiOf(publicKey),
    identity: o.identity,
    roles,
    usage: o.usage ?? "client",
    lifetimeSeconds,
    ...(o.dnsNames && { dnsNames: o.dnsNames }),
    ...(o.ipAddresses && { ipAddresses: o.ipAddresses }),
    ...(o.now && { now: o.now }),
    ...(o.crlUrl !== undefined && { crlUrl: o.crlUrl }),
    ...(o.ocspUrl !== undefined && { ocspUrl: o.ocspUrl }),
  });
  const pfx = buildPkcs12({
    privateKey,
    certificateDer: certificate.der,
    chainDer: pemCertificatesToDer(o.issuer.chainPem),
    password: o.password,
    friendlyName: o.identity,
  });
  return { pfx, certificate };
}
