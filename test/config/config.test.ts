import { readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { parse } from "yaml";
import { ConfigError, loadConfig, parseConfig } from "../../src/config/load.js";
import { ROOT } from "../helpers/process.js";

t.test("config/postern.yaml holds exactly the built-in defaults", async (t) => {
  const fromFile = parseConfig(parse(readFileSync(join(ROOT, "config", "postern.yaml"), "utf8")));
  t.same(fromFile, parseConfig({}));
});

t.test("environment variables override their keys, and a bad one is named", async (t) => {
  const env = {
    POSTERN_CONFIG: join(ROOT, "config", "postern.yaml"),
    POSTERN_REDIS_URL: "redis://10.0.0.1:6379",
    POSTERN_REDIS_CLUSTER: "true",
    POSTERN_DATA_PORT: "9443",
    POSTERN_PKI_HOSTNAMES: "gw.example, gw2.example",
    POSTERN_HANDSHAKES_PER_SECOND_PER_ADDRESS: "0",
  };
  const config = loadConfig(env);
  t.equal(config.redis.url, "redis://10.0.0.1:6379");
  t.equal(config.redis.cluster, true);
  t.equal(config.listeners.data.port, 9443);
  t.same(config.pki.hostnames, ["gw.example", "gw2.example"]);
  t.equal(config.tls.handshakesPerSecondPerAddress, 0);
  t.ok(Object.isFrozen(config.listeners.data), "frozen");
  t.throws(() => loadConfig({ ...env, POSTERN_REDIS_CLUSTER: "maybe" }), { name: "ConfigError", message: /redis\.cluster \(from POSTERN_REDIS_CLUSTER\)/ });
  for (const [word, value] of [["1", true], ["yes", true], ["On", true], ["0", false], ["no", false], ["FALSE", false]] as const) {
    t.equal(loadConfig({ ...env, POSTERN_REDIS_CLUSTER: word }).redis.cluster, value, `POSTERN_REDIS_CLUSTER=${word}`);
  }
  t.throws(() => loadConfig({ ...env, POSTERN_DATA_PORT: "70000" }), { message: /listeners\.data\.port \(from POSTERN_DATA_PORT\)/ });
});

t.test("every mistake names its key", async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ listeners: { data: { port: "abc" } } }, /listeners\.data\.port: expected number, got the string "abc"/],
    [{ routes: [{ name: "r", path: "/x", backend: "nowhere" }] }, /routes\.0\.backend: names backend "nowhere"/],
    [{ signature: { maxAgeSeconds: -1 } }, /signature\.maxAgeSeconds/],
    [{ pki: { defaultProfile: "missing" } }, /pki\.defaultProfile/],
    [{ extra: true }, /unknown key\(s\) extra/],
    [{ backends: { b: { type: "stream", backpressure: { maxGroupLag: 5 } } }, routes: [] }, /backends\.b\.backpressure\.maxGroupLag: needs consumerGroup/],
  ];
  for (const [raw, message] of cases) t.throws(() => parseConfig(raw), message, JSON.stringify(raw));
  t.ok(new ConfigError("x") instanceof Error);
});

t.test("the read-only PKI and its writable locations have environment variables", async (t) => {
  const config = loadConfig({
    POSTERN_CONFIG: join(ROOT, "config", "postern.yaml"),
    POSTERN_PKI_DIR: "/pki",
    POSTERN_PKI_READ_ONLY: "1",
    POSTERN_PKI_STATE_DIR: "/v/state",
    POSTERN_PKI_SIGNING_KEYS_DIR: "/v/keys",
    POSTERN_PKI_STORE_DIR: "/v/store",
  });
  t.equal(config.pki.readOnly, true);
  t.equal(config.pki.signingKeysDir, "/v/keys");
  t.equal(config.pki.storeDir, "/v/store");
  t.equal(loadConfig({ POSTERN_CONFIG: join(ROOT, "config", "postern.yaml") }).pki.readOnly, false, "off by default");
  t.throws(() => loadConfig({ POSTERN_CONFIG: join(ROOT, "config", "postern.yaml"), POSTERN_PKI_READ_ONLY: "1" }), { message: /pki\.readOnly \(from POSTERN_PKI_READ_ONLY\): pki\.stateDir is certs\/state, inside pki\.dir \(certs\)/ });
});
