import type { ServerRenewalJson } from "../client/index.js";
import { PosternError } from "../errors.js";
import type { ServerRenewal } from "../pki/index.js";
import type { AdminEndpoint } from "./router.js";

export interface ServerRenewalDeps {
  /** Issues, records and writes the new server certificate. */
  renew(input: { keepKey: boolean; actor: string }): Promise<ServerRenewal>;
  /** Reloads the listeners' TLS material; resolves with the serial new handshakes get. */
  reload(): Promise<{ status: string; serial: string; reason?: string }>;
}

/**
 * POST /v1/server-certificate/renew (admin): a new server certificate for the gateway, served
 * to new handshakes as soon as the answer is sent; `{"keepKey": true}` certifies the current
 * key again (default: a new key). Open connections are untouched; the old certificate is not
 * revoked and expires by itself.
 */
export function serverRenewalEndpoint(deps: ServerRenewalDeps): AdminEndpoint {
  return {
    method: "POST",
    path: "/v1/server-certificate/renew",
    auth: "admin",
    async handle(request) {
      const body = await request.json();
      if (body.keepKey !== undefined && typeof body.keepKey !== "boolean") throw new PosternError("bad-request", "keepKey must be true or false");
      const renewal = await deps.renew({ keepKey: body.keepKey === true, actor: request.peer?.identity.id ?? "anonymous" });
      const reload = await deps.reload();
      if (reload.serial !== renewal.serial) {
        // Written and recorded, but this gateway would not serve it: say so rather than claim success.
        throw new PosternError("internal", `the new server certificate ${renewal.serial} was written but not loaded: ${reload.reason ?? reload.status}`);
      }
      const json: ServerRenewalJson = {
        serial: renewal.serial,
        notAfter: new Date(renewal.notAfterMs).toISOString(),
        previousSerial: renewal.previousSerial,
        keptKey: renewal.keptKey,
        served: true,
      };
      return { status: 201, json };
    },
  };
}
