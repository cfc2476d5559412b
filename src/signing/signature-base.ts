import { isInnerList, parseList } from "structured-headers";
import type { ErrorCode } from "../errors.js";
import type { HttpMessageParts } from "./http-message.js";
import { componentFromItem, type ComponentIdentifier, createSignatureBase, MessageView, fail, serializeInnerList } from "./lib/index.js";

export type SignatureBaseResult = { ok: true; base: string } | { ok: false; code: ErrorCode; detail: string };

export interface SignatureBaseOptions {
  /** Related request for `;req` components. */
  request?: HttpMessageParts;
  /** Default false here (RFC behaviour: lines are combined); verifyMessage defaults to true. */
  rejectDuplicateFields?: boolean;
}

/**
 * The RFC 9421 §2.5 signature base of `msg` for one signature, given the serialized
 * signature parameters (a Signature-Input member value without its label, e.g.
 * '("@method" "@path");created=1618884473;keyid="k"'), re-serialized as a verifier does. For tools, consumers that
 * verify by hand, and conformance tests; never throws.
 */
export function buildSignatureBase(
  msg: HttpMessageParts,
  signatureParams: string,
  options: SignatureBaseOptions = {},
): SignatureBaseResult {
  let members;
  try {
    members = parseList(signatureParams);
  } catch {
    return fail("bad-request", "the signature parameters are not an Inner List");
  }
  const innerList = members[0];
  if (members.length !== 1 || innerList === undefined || !isInnerList(innerList)) {
    return fail("bad-request", "the signature parameters are not one Inner List");
  }
  const components: ComponentIdentifier[] = [];
  for (const item of innerList[0]) {
    const id = componentFromItem(item);
    if (!id.ok) return id;
    components.push(id.value);
  }
  let canonical: string;
  try {
    canonical = serializeInnerList(innerList);
  } catch {
    return fail("bad-request", "the signature parameters cannot be re-serialized");
  }
  const base = createSignatureBase(
    {
      target: new MessageView(msg),
      request: options.request ? new MessageView(options.request) : undefined,
      rejectDuplicateFields: options.rejectDuplicateFields ?? false,
    },
    components,
    canonical,
  );
  return base.ok ? { ok: true, base: base.value } : base;
}
