import type { ComponentIdentifier } from "./component-identifier.js";
import { resolveDerivedValues } from "./derived-value.js";
import { resolveFieldValue } from "./field-value.js";
import type { MessageView } from "./message-view.js";
import { fail, ok, type Result } from "./result.js";

export interface BaseContext {
  /** The message the signature is on. */
  target: MessageView;
  /** The request a response answers, for `;req` components. */
  request: MessageView | undefined;
  rejectDuplicateFields: boolean;
}

/**
 * The signature base of RFC 9421 §2.5: one line per covered component, then the
 * "@signature-params" line (no trailing newline). Any component that cannot be resolved
 * fails the whole base; no partial base is ever returned.
 */
export function createSignatureBase(
  context: BaseContext,
  components: readonly ComponentIdentifier[],
  signatureParams: string,
): Result<string> {
  const seen = new Set<string>();
  let base = "";
  for (const id of components) {
    if (seen.has(id.serialized)) return fail("bad-request", `component ${id.display} is covered twice`);
    seen.add(id.serialized);
    let view = context.target;
    if (id.req) {
      if (!context.target.isResponse) return fail("bad-request", ";req is only allowed on a response");
      if (context.request === undefined) return fail("signature-invalid", "no related request for ;req");
      view = context.request;
    }
    if (id.name.startsWith("@")) {
      const values = resolveDerivedValues(view, id);
      if (!values.ok) return values;
      for (const value of values.value) base += `${id.serialized}: ${value}\n`;
    } else {
      const value = resolveFieldValue(view, id, context.rejectDuplicateFields);
      if (!value.ok) return value;
      base += `${id.serialized}: ${value.value}\n`;
    }
  }
  return ok(`${base}"@signature-params": ${signatureParams}`);
}
