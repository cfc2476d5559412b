import { join, resolve } from "node:path";
import type { z } from "zod";
import { isInsideDir, locationsInsidePkiDir, stateLocations, type LocationInput } from "./locations.js";
import { forbiddenIdentityHeaders } from "./reserved-headers.js";

/** The parts of a parsed configuration the cross-key checks read. */
interface Checked extends LocationInput {
  pki: LocationInput["pki"] & { profiles: Record<string, unknown>; defaultProfile: string; readOnly: boolean };
  redis: { url: string; sentinel?: unknown };
  backends: Record<string, ({ type: "stream"; stream: string } | { type: "http"; url: string; tls: { pinSha256: string[] }; identityHeaders: Record<string, string> }) & { sealing?: { publicKeys: string } | undefined }>;
  routes: ReadonlyArray<{ backend: string; path: string; sealed: "required" | "allowed" | "forbidden" }>;
}

const TEMPLATE_PARAM = /\{param\.([A-Za-z0-9._~-]+)\}/g;
/** What the embedded nonce journal is called under data.dir (a backend's file must not be it). */
export const NONCE_JOURNAL_FILE = "nonces.jsonl";

/**
 * The checks that span keys, run with the schema's own so every problem is reported at once,
 * each naming its key: profiles and backends that routes name exist; a stream template reads
 * only path parameters every route of its backend has; an embedded file does not collide with
 * one Postern writes for something else; an HTTP backend's URL carries no query, fragment or
 * credentials, pins need https, and identity headers do not reuse reserved fields; with
 * `pki.readOnly`, nothing Postern writes lies inside `pki.dir`.
 */
export function crossChecks(config: Checked, ctx: z.RefinementCtx): void {
  const issue = (path: Array<string | number>, message: string) => ctx.addIssue({ code: "custom", path, message });
  if (config.pki.readOnly) {
    // Checked here, before a socket opens, rather than met as EACCES halfway through a start.
    const embedded = config.redis.url === "" && config.redis.sentinel === undefined;
    for (const { key, path } of locationsInsidePkiDir(config, embedded)) {
      // Reported at pki.readOnly, which makes it a problem (and may come from the environment).
      issue(["pki", "readOnly"], `${key} is ${path}, inside pki.dir (${config.pki.dir}), which is not to be written: set ${key} to a writable volume`);
    }
  }
  if (!Object.hasOwn(config.pki.profiles, config.pki.defaultProfile)) {
    issue(["pki", "defaultProfile"], `names profile "${config.pki.defaultProfile}", which is not defined under pki.profiles`);
  }
  config.routes.forEach((route, i) => {
    const backend = config.backends[route.backend];
    if (!backend) return issue(["routes", i, "backend"], `names backend "${route.backend}", which is not defined under backends`);
    if (route.sealed !== "forbidden" && !backend.sealing) {
      issue(["routes", i, "sealed"], `is ${route.sealed}, but backends.${route.backend} has no sealing.publicKeys`);
    }
    if (backend.type !== "stream") return;
    const params = route.path.split("/").filter((s) => s.startsWith(":")).map((s) => s.slice(1));
    for (const [, wanted] of backend.stream.matchAll(TEMPLATE_PARAM)) {
      if (!params.includes(wanted!)) {
        return issue(["routes", i, "path"], `backends.${route.backend}.stream reads {param.${wanted}}, but ${route.path} has no :${wanted}`);
      }
    }
  });
  const reserved = [join(config.data.dir, NONCE_JOURNAL_FILE), stateLocations(config).auditLogPath].map((p) => resolve(p));
  for (const [name, backend] of Object.entries(config.backends)) {
    // The gateway may read public keys only; a JWKS inside the PKI directory would sit beside the CA's keys.
    if (backend.sealing && isInsideDir(backend.sealing.publicKeys, config.pki.dir)) {
      issue(["backends", name, "sealing", "publicKeys"], `is inside pki.dir (${config.pki.dir}); backend keys belong to the consumer's side, copy only jwks.json elsewhere`);
    }
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
