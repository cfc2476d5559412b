import type { KeyObject } from "node:crypto";
import type { BareItem, Item } from "structured-headers";
import { PosternError } from "../errors.js";
import { algorithmForKey, keyMatchesAlgorithm } from "./algorithm-for-key.js";
import type { SignatureAlgorithm } from "./algorithms.js";
import type { HttpMessageParts } from "./http-message.js";
import { PROFILE_COMPONENTS } from "./profile.js";
import { componentFromString, type ComponentIdentifier, createSignatureBase, serializeInnerList, signBase, MessageView } from "./lib/index.js";

export interface SignOptions {
  /** Private key (or secret for hmac-sha256). */
  key: KeyObject;
  /** Default algorithmForKey(key). */
  alg?: SignatureAlgorithm;
  keyid: string;
  /** Dictionary key in Signature-Input / Signature; default "sig1". */
  label?: string;
  /** Default PROFILE_COMPONENTS; option syntax, e.g. '@query-param;name="Pet"', 'example-dict;sf'. */
  components?: readonly string[];
  /** Unix seconds. */
  created: number;
  expires?: number;
  nonce?: string;
  tag?: string;
  /** Put the alg parameter in Signature-Input; default false. */
  includeAlg?: boolean;
  /** Parameter order; listed names first, the rest as created, expires, keyid, alg, nonce, tag. */
  paramOrder?: readonly string[];
  /** Related request, for `;req` components when signing a response. */
  request?: HttpMessageParts;
}

/** Header values to add to the message: `Signature-Input` and `Signature`. */
export interface SignedFields {
  signatureInput: string;
  signature: string;
}

const DEFAULT_PARAM_ORDER = ["created", "expires", "keyid", "alg", "nonce", "tag"] as const;
const LABEL = /^[a-z*][a-z0-9_\-.*]*$/;

function misuse(detail: string): never {
  throw new PosternError("internal", detail);
}

function signatureParameters(opts: SignOptions, alg: SignatureAlgorithm): Map<string, BareItem> {
  for (const name of ["created", "expires"] as const) {
    const value = opts[name];
    if (value !== undefined && !Number.isSafeInteger(value)) misuse(`${name} must be an integer (unix seconds)`);
  }
  const values: Record<(typeof DEFAULT_PARAM_ORDER)[number], BareItem | undefined> = {
    created: opts.created,
    expires: opts.expires,
    keyid: opts.keyid,
    alg: opts.includeAlg ? alg : undefined,
    nonce: opts.nonce,
    tag: opts.tag,
  };
  const params = new Map<string, BareItem>();
  for (const name of [...(opts.paramOrder ?? []), ...DEFAULT_PARAM_ORDER]) {
    if (!Object.hasOwn(values, name) || params.has(name)) continue;
    const value = values[name as keyof typeof values];
    if (value !== undefined) params.set(name, value);
  }
  return params;
}

/** Parsed component lists, once per caller array (callers pass the same constant each time). */
const parsedComponents = new WeakMap<readonly string[], readonly ComponentIdentifier[]>();

function coveredComponents(texts: readonly string[]): readonly ComponentIdentifier[] {
  let components = parsedComponents.get(texts);
  if (components === undefined) {
    components = texts.map((text) => {
      const id = componentFromString(text);
      if (!id.ok) misuse(id.detail);
      return id.value;
    });
    parsedComponents.set(texts, components);
  }
  return components;
}

/**
 * Sign `msg` per RFC 9421 and return the `Signature-Input` and `Signature` values. The base
 * is built from the raw header lines exactly as `verifyMessage` rebuilds it (several lines of
 * one field are combined, as the RFC says; the verifier may refuse that).
 * Throws PosternError "internal" on misuse (key unfit for alg, bad label or parameters) and
 * "bad-request" when the message lacks a covered component or holds one that cannot be
 * signed. Security default: alg comes from the key, never v1.5 or hmac unless asked.
 */
export function signMessage(msg: HttpMessageParts, opts: SignOptions): SignedFields {
  const alg = opts.alg ?? algorithmForKey(opts.key);
  if (alg === undefined) misuse("the key's type has no signature algorithm");
  if (!keyMatchesAlgorithm(opts.key, alg)) misuse(`the key cannot be used with ${alg}`);
  const label = opts.label ?? "sig1";
  if (!LABEL.test(label)) misuse("the label must be a Structured Field key");

  const components = coveredComponents(opts.components ?? PROFILE_COMPONENTS);
  const items: Item[] = components.map((c) => [c.name, c.params]);
  let signatureParams: string;
  try {
    signatureParams = serializeInnerList([items, signatureParameters(opts, alg)]);
  } catch {
    misuse("a signature parameter cannot be serialized (strings must be printable ASCII)");
  }

  const base = createSignatureBase(
    {
      target: new MessageView(msg),
      request: opts.request ? new MessageView(opts.request) : undefined,
      rejectDuplicateFields: false,
    },
    components,
    signatureParams,
  );
  if (!base.ok) throw new PosternError("bad-request", base.detail);
  const signature = signBase(alg, opts.key, Buffer.from(base.value, "latin1"));
  return {
    signatureInput: `${label}=${signatureParams}`,
    signature: `${label}=:${signature.toString("base64")}:`,
  };
}

/** Alias of signMessage for request call sites. */
export const signRequest = signMessage;
