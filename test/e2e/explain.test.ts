import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { ensurePki } from "../../src/pki/ca/bootstrap.js";
import { startGateway } from "../helpers/gateway.js";
import { finished, spawnTs } from "../helpers/process.js";

t.test("postern explain shows, check by check, why a certificate may or may not post to a route", async (t) => {
  const gw = await startGateway({
    routes: [
      { name: "orders", path: "/v1/orders/:id", backend: "messages", allow: { roles: ["client"] }, rateLimit: { requestsPerSecond: 5, burst: 10 } },
    ],
  });
  const other = await mkdtemp(join(tmpdir(), "postern-explain-other-"));
  t.teardown(async () => {
    await gw.stop();
    await rm(other, { recursive: true, force: true });
  });
  const certs = join(gw.dir, "certs");
  const explain = (...args: string[]) =>
    finished(
      spawnTs("src/cli/main.ts", [
        "explain",
        "--admin-url",
        `https://127.0.0.1:${gw.addresses.admin.port}`,
        "--cert",
        join(certs, "admin.crt"),
        "--key",
        join(certs, "admin.key"),
        "--ca",
        join(certs, "ca-bundle.pem"),
        ...args,
      ]),
    );

  const allowed = await explain("--cert-file", join(certs, "demo-client.crt"), "--path", "/v1/orders/7");
  t.equal(allowed.code, 0, allowed.stderr);
  t.match(allowed.stdout, /ok\s+chain/);
  t.match(allowed.stdout, /ok\s+authorization/);
  t.match(allowed.stdout, /ok\s+rate-limit\s+5\/s, burst 10/);
  t.match(allowed.stdout, /=> allowed/);

  const wrongRole = await explain("--cert-file", join(certs, "admin.crt"), "--path", "/v1/orders/7");
  t.equal(wrongRole.code, 1);
  t.match(wrongRole.stdout, /FAIL authorization\s+spiffe:\/\/postern\.local\/admin\/operator with roles \[admin\]; the route admits role client/);
  t.match(wrongRole.stdout, /=> denied/);

  const noRoute = await explain("--identity", "spiffe://postern.local/client/x", "--role", "client", "--path", "/v2/nothing");
  t.equal(noRoute.code, 1);
  t.match(noRoute.stdout, /FAIL route\s+not-found/);
  t.match(noRoute.stdout, /-\s+chain\s+no certificate given/);

  await ensurePki({ dir: other, hostnames: [] });
  const stranger = await explain("--cert-file", join(other, "demo-client.crt"), "--path", "/v1/orders/7");
  t.equal(stranger.code, 1);
  t.match(stranger.stdout, /FAIL chain\s+no Postern CA issued/);

  const demo = (await gw.app.authority.list({ identity: "spiffe://postern.local/client/demo" })).items[0]!;
  await gw.app.authority.revoke({ serial: demo.serial, reason: "keyCompromise", actor: "test" });
  const revoked = await explain("--cert-file", join(certs, "demo-client.crt"), "--path", "/v1/orders/7");
  t.equal(revoked.code, 1);
  t.match(revoked.stdout, /FAIL revocation\s+revoked \(keyCompromise\)/);

});
