import { PosternError } from "../../errors.js";
import { isSignatureAlgorithm, type SignatureAlgorithm } from "../algorithms.js";
import { componentFromString, type ComponentIdentifier } from "./component-identifier.js";
import { excerpt, fail, type Failure } from "./result.js";
import type { SignatureParameters } from "./signature-params.js";

export type RequiredParameter = "created" | "expires" | "nonce" | "keyid" | "tag" | "alg";

/** Canonical forms of a caller's required components, parsed once per array object. */
const canonicalCache = new WeakMap<readonly string[], ReadonlySet<string>>();

function canonicalComponents(required: readonly string[]): ReadonlySet<string> {
  let set = canonicalCache.get(required);
  if (set === undefined) {
    const parsed = new Set<string>();
    for (const text of required) {
      const id = componentFromString(text);
      // A bad entry is a configuration error, not hostile input: say so loudly.
      if (!id.ok) throw new PosternError("internal", `invalid required component ${excerpt(text)}`);
      parsed.add(id.value.serialized);
    }
    set = parsed;
    canonicalCache.set(required, set);
  }
  return set;
}

export interface ProfileRules {
  requiredComponents: readonly string[] | undefined;
  requiredParameters: readonly RequiredParameter[] | undefined;
  allowedAlgorithms: readonly SignatureAlgorithm[];
}

/**
 * The verifier's policy on a parsed signature (RFC 9421 §3.2.1), before any key is looked
 * up: required components and parameters present, `alg` (if any) allowed, `keyid` present
 * (keys are only ever found by keyid). Every refusal is "signature-profile".
 */
export function checkProfile(
  components: readonly ComponentIdentifier[],
  params: SignatureParameters,
  rules: ProfileRules,
): Failure | undefined {
  if (rules.requiredComponents !== undefined && rules.requiredComponents.length > 0) {
    const covered = new Set(components.map((c) => c.serialized));
    for (const required of canonicalComponents(rules.requiredComponents)) {
      if (!covered.has(required)) return fail("signature-profile", `the signature does not cover ${required}`);
    }
  }
  for (const name of rules.requiredParameters ?? []) {
    if (params[name] === undefined) return fail("signature-profile", `the signature lacks parameter ${name}`);
  }
  if (params.alg !== undefined) {
    if (!isSignatureAlgorithm(params.alg) || !rules.allowedAlgorithms.includes(params.alg)) {
      return fail("signature-profile", `algorithm ${excerpt(params.alg)} is not allowed`);
    }
  }
  if (params.keyid === undefined) return fail("signature-profile", "the signature has no keyid");
  return undefined;
}
