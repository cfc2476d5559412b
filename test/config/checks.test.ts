import t from "tap";
import { parseConfig } from "../../src/config/load.js";

const http = (backend: Record<string, unknown>) => ({
  backends: { up: { type: "http", tls: { clientCertificate: false }, ...backend } },
  routes: [{ name: "r", path: "/in", backend: "up" }],
});

t.test("HTTP backend settings are checked when the configuration is loaded, each naming its key", async (t) => {
  t.throws(() => parseConfig(http({ url: "http://h/in?x=1" })), { name: "ConfigError", message: /backends\.up\.url: must not hold a query, fragment or credentials/ });
  t.throws(() => parseConfig(http({ url: "http://user:pw@h/" })), { message: /backends\.up\.url/ });
  t.throws(() => parseConfig(http({ url: "http://h/", tls: { clientCertificate: false, pinSha256: ["A".repeat(43) + "="] } })), { message: /backends\.up\.tls\.pinSha256: pins need an https url/ });
  t.throws(() => parseConfig(http({ url: "http://h/", identityHeaders: { host: "id" } })), { message: /backends\.up\.identityHeaders: may not set host/ });
  t.throws(() => parseConfig(http({ url: "http://h/", identityHeaders: { "x-ok": "id", Signature: "roles" } })), { message: /may not set Signature/ });
  t.throws(() => parseConfig(http({ url: "https://h/", tls: { clientCertificate: false, caFile: "/nonexistent/ca.pem" } })), { message: /backends\.up\.tls\.caFile: cannot read \/nonexistent\/ca\.pem \(ENOENT\)/ });
  t.ok(parseConfig(http({ url: "https://h/in", tls: { clientCertificate: true, pinSha256: ["A".repeat(43) + "="] } })), "a sound backend passes");
});

t.test("an embedded file that Postern writes for something else cannot be a backend's", async (t) => {
  t.throws(() => parseConfig({ backends: { nonces: { type: "stream", stream: "x" } }, routes: [{ name: "r", path: "/in", backend: "nonces" }] }), { message: /backends\.nonces: its embedded file nonces\.jsonl/ });
  t.throws(() => parseConfig({ backends: { audit: { type: "stream", stream: "x" } }, routes: [{ name: "r", path: "/in", backend: "audit" }] }), { message: /backends\.audit/ });
});

t.test("all the problems are reported at once", async (t) => {
  const error = (() => {
    try {
      parseConfig({ ...http({ url: "http://h/?q", identityHeaders: { host: "id" } }), pki: { defaultProfile: "nope" } });
    } catch (e) {
      return e as Error;
    }
  })();
  t.match(error?.message, /pki\.defaultProfile[\s\S]*backends\.up\.url[\s\S]*backends\.up\.identityHeaders/);
});

t.test("pki.readOnly: every location Postern writes must lie outside pki.dir, each named by its key", async (t) => {
  const error = (() => {
    try {
      parseConfig({ pki: { dir: "/pki", readOnly: true } });
    } catch (e) {
      return e as Error;
    }
    return undefined;
  })();
  t.match(error?.message, /pki\.readOnly: pki\.stateDir is \/pki\/state, inside pki\.dir \(\/pki\), which is not to be written: set pki\.stateDir to a writable volume/);
  t.match(error?.message, /pki\.readOnly: pki\.signingKeysDir is \/pki\/signing-keys, inside pki\.dir/);
  t.match(error?.message, /pki\.readOnly: pki\.storeDir is \/pki\/store, inside pki\.dir/, "embedded mode: the file store");
  t.notMatch(error?.message, /data\.dir|auditLogPath/, "data/ is not inside /pki");
  t.throws(() => parseConfig({ pki: { dir: "/pki", readOnly: true, stateDir: "/v/state", signingKeysDir: "/v/keys", storeDir: "/v/store" }, data: { dir: "/pki/data" } }), { message: /pki\.auditLogPath is \/pki\/data\/audit\.jsonl[\s\S]*data\.dir is \/pki\/data/ });
  t.throws(() => parseConfig({ pki: { dir: "certs", readOnly: true, stateDir: "certs/../certs/x", signingKeysDir: "/v/keys", storeDir: "/v/store" } }), { message: /pki\.stateDir is certs\/\.\.\/certs\/x/ }, "paths are compared resolved");
  const pod = { pki: { dir: "/pki", readOnly: true, stateDir: "/v/state", signingKeysDir: "/v/state/signing-keys", auditLogPath: "/v/state/audit.jsonl" }, data: { dir: "/v/data" } };
  t.throws(() => parseConfig(pod), { message: /pki\.storeDir/ }, "embedded mode still needs the store elsewhere");
  t.ok(parseConfig({ ...pod, redis: { url: "redis://redis:6379" } }), "Redis mode: no file store is opened, so none needs a place");
  t.ok(parseConfig({ ...pod, pki: { ...pod.pki, storeDir: "/v/store" } }), "embedded mode with every location on a volume");
  t.ok(parseConfig({ pki: { dir: "/pki" } }), "without readOnly the defaults inside pki.dir are fine");
  t.ok(parseConfig({ pki: { dir: "/pki", readOnly: true, stateDir: "/pki-state", signingKeysDir: "/pki2", storeDir: "/pki-store" } }), "a sibling whose name starts alike is outside");
});
