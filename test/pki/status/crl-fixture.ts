/**
 * Test-only PKI: a root CA, an issuing CA and leaves minted with @peculiar/x509 in a temp
 * dir, plus a thin wrapper around the real `openssl` binary. Independent of src/pki/ca.ts
 * (only the x509 loader is shared).
 */
import { spawn, spawnSync } from "node:child_process";
import { webcrypto } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TAG, children, ctx, readOne, toHex, type DerNode } from "../../../src/pki/der/der.js";
import { x509 } from "../../../src/pki/der/x509.js";

export type KeyKind = "P-256" | "P-384" | "Ed25519" | "RSA";

export interface TestCa {
  cert: x509.X509Certificate;
  privateKey: CryptoKey;
  pem: string;
  path: string;
}

export interface TestLeaf {
  cert: x509.X509Certificate;
  pem: string;
  path: string;
  /** The serial's exact DER content bytes, lowercase hex. */
  serial: string;
  keyPem: string;
}

export interface TestPki {
  dir: string;
  root: TestCa;
  issuing: TestCa;
  /** root + issuing, for -CAfile. */
  bundlePath: string;
  /** A client leaf (clientAuth); `server: true` makes a 127.0.0.1/localhost server leaf. */
  issueLeaf(serialHex?: string, opts?: { server?: boolean }): Promise<TestLeaf>;
  cleanup(): void;
}

function algorithms(kind: KeyKind): { gen: Algorithm; sign: Algorithm } {
  switch (kind) {
    case "P-256":
      return { gen: { name: "ECDSA", namedCurve: "P-256" } as Algorithm, sign: { name: "ECDSA", hash: "SHA-256" } as Algorithm };
    case "P-384":
      return { gen: { name: "ECDSA", namedCurve: "P-384" } as Algorithm, sign: { name: "ECDSA", hash: "SHA-384" } as Algorithm };
    case "Ed25519":
      return { gen: { name: "Ed25519" }, sign: { name: "Ed25519" } };
    case "RSA":
      return {
        gen: { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" } as Algorithm,
        sign: { name: "RSASSA-PKCS1-v1_5" },
      };
  }
}

async function generate(kind: KeyKind): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(algorithms(kind).gen, true, ["sign", "verify"])) as CryptoKeyPair;
}

/** Lowercase hex of the certificate's serialNumber exactly as encoded. */
export function certSerialHex(cert: x509.X509Certificate): string {
  const [tbs] = children(readOne(new Uint8Array(cert.rawData), TAG.sequence));
  const fields = children(tbs as DerNode);
  const serial = fields[0]?.tag === ctx(0, true) ? fields[1] : fields[0];
  if (!serial) throw new Error("certificate without serialNumber");
  return toHex(serial.content);
}

/** Mints root and issuing CAs (both with `kind` keys unless `rootKind` says otherwise). */
export async function mintTestPki(kind: KeyKind = "P-256", rootKind: KeyKind = kind): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), "postern-pki-"));
  const notBefore = new Date(Date.now() - 3600_000);
  const notAfter = new Date(Date.now() + 30 * 24 * 3600_000);
  const caExt = async (keys: CryptoKeyPair, issuerKey: CryptoKey) => [
    new x509.BasicConstraintsExtension(true, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(issuerKey),
  ];
  const rootKeys = await generate(rootKind);
  const rootCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01", name: "CN=Postern Test Root", keys: rootKeys, notBefore, notAfter,
    signingAlgorithm: algorithms(rootKind).sign, extensions: await caExt(rootKeys, rootKeys.publicKey),
  });
  const issKeys = await generate(kind);
  const issCert = await x509.X509CertificateGenerator.create({
    serialNumber: "02", subject: "CN=Postern Test Issuing CA", issuer: rootCert.subject,
    publicKey: issKeys.publicKey, signingKey: rootKeys.privateKey, notBefore, notAfter,
    signingAlgorithm: algorithms(rootKind).sign, extensions: await caExt(issKeys, rootKeys.publicKey),
  });
  const save = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const root: TestCa = { cert: rootCert, privateKey: rootKeys.privateKey, pem: rootCert.toString("pem"), path: "" };
  root.path = save("root.pem", root.pem);
  const issuing: TestCa = { cert: issCert, privateKey: issKeys.privateKey, pem: issCert.toString("pem"), path: "" };
  issuing.path = save("issuing.pem", issuing.pem);
  const bundlePath = save("bundle.pem", root.pem + "\n" + issuing.pem + "\n");
  let counter = 0;
  return {
    dir, root, issuing, bundlePath,
    async issueLeaf(serialHex?: string, opts: { server?: boolean } = {}): Promise<TestLeaf> {
      counter++;
      const leafKeys = await generate("P-256");
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: serialHex ?? webcrypto.getRandomValues(new Uint8Array(16)).reduce((s, b) => s + b.toString(16).padStart(2, "0"), "7"),
        subject: `CN=leaf-${counter}`, issuer: issCert.subject, publicKey: leafKeys.publicKey,
        signingKey: issKeys.privateKey, notBefore, notAfter: new Date(Date.now() + 24 * 3600_000),
        signingAlgorithm: algorithms(kind).sign,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([opts.server ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
          await x509.AuthorityKeyIdentifierExtension.create(issKeys.publicKey),
          ...(opts.server
            ? [new x509.SubjectAlternativeNameExtension([{ type: "ip", value: "127.0.0.1" }, { type: "dns", value: "localhost" }])]
            : []),
        ],
      });
      const pem = cert.toString("pem");
      const pkcs8 = new Uint8Array(await webcrypto.subtle.exportKey("pkcs8", leafKeys.privateKey));
      const keyPem = x509.PemConverter.encode(pkcs8, "PRIVATE KEY");
      return { cert, pem, keyPem, path: save(`leaf-${counter}.pem`, pem), serial: certSerialHex(cert) };
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface OpensslResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real openssl binary; never throws on a non-zero exit. */
export function openssl(args: string[], input?: Uint8Array | string): OpensslResult {
  const r = spawnSync("openssl", args, { input, encoding: "utf8", timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** Like `openssl`, without blocking the event loop (needed when openssl calls a server in this process). */
export function opensslAsync(args: string[]): Promise<OpensslResult> {
  return new Promise((resolve) => {
    const child = spawn("openssl", args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}
