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
