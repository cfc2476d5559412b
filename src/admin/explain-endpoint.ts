import { explainAccess, type ExplainDeps } from "../gateway/index.js";
import { optionalStrings, requireString, type AdminEndpoint } from "./router.js";

/** POST /v1/explain: the policy dry-run for a certificate (PEM) or an identity, and a method + path. */
export function explainEndpoint(deps: ExplainDeps): AdminEndpoint {
  return {
    method: "POST",
    path: "/v1/explain",
    auth: "admin",
    async handle(request) {
      const body = await request.json();
      const certificatePem = typeof body.certificate === "string" ? body.certificate : undefined;
      const id = typeof body.identity === "string" ? body.identity : undefined;
      const explanation = await explainAccess(
        {
          ...(certificatePem ? { certificatePem } : {}),
          ...(id ? { identity: { id, roles: optionalStrings(body, "roles") ?? [] } } : {}),
          method: requireString(body, "method", /^[A-Z]{3,7}$/i),
          path: requireString(body, "path", /^\//),
        },
        deps,
      );
      return { status: 200, json: explanation };
    },
  };
}
