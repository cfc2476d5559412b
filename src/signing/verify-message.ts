import type { KeyObject } from "node:crypto";
import type { Item } from "structured-headers";
import type { ErrorCode } from "../errors.js";
import { algorithmForKey, keyMatchesAlgorithm } from "./algorithm-for-key.js";
import { CLIENT_ALGORITHMS, isSignatureAlgorithm, type SignatureAlgorithm } from "./algorithms.js";
import type { HttpMessageParts } from "./http-message.js";
import { checkFreshness, checkProfile, type RequiredParameter, componentFromItem, type ComponentIdentifier, createSignatureBase, verifyBase, MessageView, fail, ok, type Result, selectSignature, readSignatureParameters, serializeInnerList, type SignatureParameters } from "./lib/index.js";

/** Most components one signature may cover: keeps the work per request bounded. */
export const MAX_COVERED_COMPONENTS = 64;

/** Key material for one keyid; `alg`, when known from the key's metadata, must agree with the signature. */
export interface VerificationKey {
  key: KeyObject;
  alg?: SignatureAlgorithm;
}

export interface VerifyOptions {
  /** Find the key for a keyid; undefined -> "key-mismatch". Exceptions it throws propagate. */
  resolveKey: (keyid: string, alg: SignatureAlgorithm | undefined) => VerificationKey | undefined;
  /** Milliseconds since the epoch (injected clock). */
  now: () => number;
  maxAgeSeconds: number;
  clockSkewSeconds: number;
  /** Choose the signature with this tag; without it the message must carry exactly one signature. */
  tag?: string;
  /** Choose the signature with this label (Dictionary key), alone or together with `tag`. */
  label?: string;
  /**
   * Components the signature must cover (option syntax, e.g. "@query-param;name=\"a\"");
   * parsed once per array. An invalid entry is a configuration error: PosternError "internal".
   */
  requiredComponents?: readonly string[];
  requiredParameters?: readonly RequiredParameter[];
  /** Default CLIENT_ALGORITHMS (no hmac, no rsa-v1_5). */
  allowedAlgorithms?: readonly SignatureAlgorithm[];
  /** Default true: a covered field sent on several lines, or a signature label named twice, is "bad-request". */
  rejectDuplicateFields?: boolean;
  /** The related request, for `;req` components when verifying a response. */
  request?: HttpMessageParts;
}

export interface VerifiedParams {
  created?: number;
  expires?: number;
  nonce?: string;
  keyid?: string;
  alg: SignatureAlgorithm;
  tag?: string;
}

export type VerifyResult =
  | { ok: true; label: string; components: string[]; params: VerifiedParams }
  | { ok: false; code: ErrorCode; detail: string };

function readComponents(items: readonly Item[]): Result<ComponentIdentifier[]> {
  if (items.length > MAX_COVERED_COMPONENTS) return fail("bad-request", "the signature covers too many components");
  const components: ComponentIdentifier[] = [];
  for (const item of items) {
    const id = componentFromItem(item);
    if (!id.ok) return id;
    components.push(id.value);
  }
  return ok(components);
}

interface ParsedSignature {
  label: string;
  components: ComponentIdentifier[];
  params: SignatureParameters;
  /** The @signature-params value: the chosen Signature-Input member re-serialized. */
  signatureParams: string;
  signature: Uint8Array;
}

/** Select the signature, then type-check its parameters and components (bad-request on misuse). */
function readSignature(target: MessageView, opts: VerifyOptions): Result<ParsedSignature> {
  const selected = selectSignature(target, { tag: opts.tag, label: opts.label, rejectRepeatedLabels: opts.rejectDuplicateFields ?? true });
  if (!selected.ok) return selected;
  const { label, input, signature } = selected.value;
  const params = readSignatureParameters(input[1]);
  if (!params.ok) return params;
  const components = readComponents(input[0]);
  if (!components.ok) return components;
  try {
    const signatureParams = serializeInnerList(input);
    return ok({ label, components: components.value, params: params.value, signatureParams, signature });
  } catch {
    return fail("bad-request", "Signature-Input cannot be re-serialized");
  }
}

function chooseAlgorithm(
  declared: SignatureAlgorithm | undefined,
  found: VerificationKey,
  allowed: readonly SignatureAlgorithm[],
): Result<SignatureAlgorithm> {
  if (declared !== undefined && found.alg !== undefined && declared !== found.alg) {
    return fail("signature-profile", "the alg parameter disagrees with the key");
  }
  const alg = declared ?? found.alg ?? algorithmForKey(found.key);
  if (alg === undefined) return fail("signature-profile", "the key's type has no allowed algorithm");
  if (!allowed.includes(alg)) return fail("signature-profile", `algorithm ${alg} is not allowed`);
  if (!keyMatchesAlgorithm(found.key, alg)) return fail("signature-profile", `the key cannot be used with ${alg}`);
  return ok(alg);
}

/**
 * Verify one RFC 9421 signature of `msg`. Returns a result and never throws on anything the
 * message holds: malformed, oversized, duplicated, ill-typed or non-ASCII input yields a
 * code. Order: parse and select (signature-missing / bad-request), profile
 * (signature-profile), key (key-mismatch), algorithm agreement (signature-profile), base and
 * crypto (bad-request / signature-invalid), then freshness (from-future / stale), so an old
 * or future signature is only reported once it is proven authentic.
 * Security defaults: CLIENT_ALGORITHMS only, duplicate covered field lines refused, `keyid`
 * required, the base built from raw header lines.
 */
export function verifyMessage(msg: HttpMessageParts, opts: VerifyOptions): VerifyResult {
  const target = new MessageView(msg);
  const parsed = readSignature(target, opts);
  if (!parsed.ok) return parsed;
  const { label, components, params, signatureParams, signature } = parsed.value;

  const allowedAlgorithms = opts.allowedAlgorithms ?? CLIENT_ALGORITHMS;
  const profile = checkProfile(components, params, {
    requiredComponents: opts.requiredComponents,
    requiredParameters: opts.requiredParameters,
    allowedAlgorithms,
  });
  if (profile) return profile;
  const { keyid, alg: declaredAlg } = params;
  const declared = isSignatureAlgorithm(declaredAlg) ? declaredAlg : undefined;
  const found = opts.resolveKey(keyid ?? "", declared);
  if (found === undefined) return fail("key-mismatch", "no key is known for this keyid");
  const alg = chooseAlgorithm(declared, found, allowedAlgorithms);
  if (!alg.ok) return alg;

  const base = createSignatureBase(
    {
      target,
      request: opts.request ? new MessageView(opts.request) : undefined,
      rejectDuplicateFields: opts.rejectDuplicateFields ?? true,
    },
    components,
    signatureParams,
  );
  if (!base.ok) return base;
  if (!verifyBase(alg.value, found.key, Buffer.from(base.value, "latin1"), signature)) {
    return fail("signature-invalid", "the signature does not verify");
  }

  const stale = checkFreshness(params, {
    nowMs: opts.now(),
    maxAgeSeconds: opts.maxAgeSeconds,
    clockSkewSeconds: opts.clockSkewSeconds,
  });
  if (stale) return stale;
  const { created, expires, nonce, tag } = params;
  return {
    ok: true,
    label,
    components: components.map((c) => c.display),
    params: {
      ...(created !== undefined && { created }),
      ...(expires !== undefined && { expires }),
      ...(nonce !== undefined && { nonce }),
      ...(keyid !== undefined && { keyid }),
      alg: alg.value,
      ...(tag !== undefined && { tag }),
    },
  };
}

/** Alias of verifyMessage for request call sites. */
export const verifyRequest = verifyMessage;
