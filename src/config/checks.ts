import { join, resolve } from "node:path";
import type { z } from "zod";
import { forbiddenIdentityHeaders } from "./reserved-headers.js";

/** The parts of a parsed configuration the cross-key checks read. */
interface Checked {
  pki: { profiles: Record<string, unknown>; defaultProfile: string; auditLogPath?: string | undefined };
  data: { dir: string };
  backends: Record<string, { type: "stream"; stream: string } | { type: "http"; url: string; tls: { pinSha256: string[] }; identityHeaders: Record<string, string> }>;
  routes: ReadonlyArray<{ backend: string; path: string }>;
}

const TEMPLATE_PARAM = /\{param\.([A-Za-z0-9._~-]+)\}/g;
/** What the embedded nonce journal is called under data.dir (a backend's file must not be it). */
export const NONCE_JOURNAL_FILE = "nonces.jsonl";

/**
 * The checks that span keys, run with the schema's own so every problem is reported at once,
 * each naming its key: profiles and backends that routes name exist; a stream template reads
 * only path parameters every route of its backend has; an embedded file does not collide with
 * one Postern writes for something else; an HTTP backend's URL carries no query, fragment or
 * credentials, pins need https, and identity headers do not reuse reserved fields.
 */
export function crossChecks(config: Checked, ctx: z.RefinementCtx): void {
  const issue = (path: Array<string | number>, message: string) => ctx.addIssue({ code: "custom", path, message });
  if (!Object.hasOwn(config.pki.profiles, config.pki.defaultProfile)) {
    issue(["pki", "defaultProfile"], `names profile "${config.pki.defaultProfile}", which is not defined under pki.profiles`);
  }
  config.routes.forEach((route, i) => {
    const backend = config.backends[route.backend];
    if (!backend) return issue(["routes", i, "backend"], `names backend "${route.backend}", which is not defined under backends`);
    if (backend.type !== "stream") return;
    const params = route.path.split("/").filter((s) => s.startsWith(":")).map((s) => s.slice(1));
    for (const [, wanted] of backend.stream.matchAll(TEMPLATE_PARAM)) {
      if (!params.includes(wanted!)) {
        return issue(["routes", i, "path"], `backends.${route.backend}.stream reads {param.${wanted}}, but ${route.path} has no :${wanted}`);
      }
    }
  });
  const reserved = [join(config.data.dir, NONCE_JOURNAL_FILE), config.pki.auditLogPath ?? join(config.data.dir, "audit.jsonl")].map((p) => resolve(p));
  for (const [name, backend] of Object.entries(config.backends)) {
    if (backend.type === "stream") {
      if (!backend.stream.includes("{") && reserved.includes(resolve(config.data.dir, `${name}.jsonl`))) {
        issue(["backends", name], `its embedded file ${name}.jsonl is one Postern writes for something else; rename the backend`);
      }
      continue;
    }
    const url = new URL(backend.url);
    if (url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") {
      issue(["backends", name, "url"], "must not hold a query, fragment or credentials");
    }
    if (url.protocol === "http:" && backend.tls.pinSha256.length > 0) issue(["backends", name, "tls", "pinSha256"], "pins need an https url");
    const forbidden = forbiddenIdentityHeaders(Object.keys(backend.identityHeaders));
    if (forbidden.length > 0) issue(["backends", name, "identityHeaders"], `may not set ${forbidden.join(", ")}`);
  }
}
