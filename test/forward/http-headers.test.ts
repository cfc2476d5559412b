import t from "tap";
import { forbiddenIdentityHeaders, isHopByHop } from "../../src/config/reserved-headers.js";
import { connectionListed, filterResponseHeaders, identityHeaderValues, joinUpstreamPath } from "../../src/forward/http-headers.js";
import type { ClientIdentity } from "../../src/pki/identity.js";

const identity: ClientIdentity = {
  id: "spiffe://postern.local/client/demo",
  roles: ["client", "billing"],
  serial: "00ab12",
  fingerprint: "fp_base64url",
  notAfterMs: 0,
};

t.test("hop-by-hop fields, in any case, including Proxy-* and Host", async (t) => {
  for (const name of ["Connection", "keep-alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Proxy-Authorization", "proxy-connection"]) {
    t.ok(isHopByHop(name), name);
  }
  for (const name of ["content-type", "x-proxy", "trailers-x", "signature"]) t.notOk(isHopByHop(name), name);
  t.same([...connectionListed(["close, X-Hop", " x-other ,"])], ["close", "x-hop", "x-other"]);
  t.same([...connectionListed(undefined)], []);
});

t.test("response headers lose hop-by-hop fields, the ones Connection lists, and content-length", async (t) => {
  const out = filterResponseHeaders({
    "content-type": "application/json",
    "content-length": "12",
    connection: "keep-alive, x-private",
    "keep-alive": "timeout=5",
    "x-private": "secret",
    "transfer-encoding": "chunked",
    "proxy-authenticate": "Basic",
    upgrade: "h2c",
    "x-request-id": "abc",
    vary: ["accept", "origin"],
    absent: undefined,
  });
  t.same(out, { "content-type": "application/json", "x-request-id": "abc", vary: "accept, origin" });
});

t.test("identity headers carry id, comma-joined roles, serial and fingerprint", async (t) => {
  t.same(
    identityHeaderValues(identity, { "X-Postern-Identity": "id", "x-postern-roles": "roles", "x-serial": "serial", "x-fp": "fingerprint" }),
    [
      ["x-postern-identity", "spiffe://postern.local/client/demo"],
      ["x-postern-roles", "client,billing"],
      ["x-serial", "00ab12"],
      ["x-fp", "fp_base64url"],
    ],
  );
  t.same(identityHeaderValues({ ...identity, roles: [] }, { r: "roles" }), [["r", ""]]);
});

t.test("identity values that could break a header line are percent-encoded", async (t) => {
  const [[, value]] = identityHeaderValues({ ...identity, id: "evil\r\nx-injected: 1" }, { "x-id": "id" }) as [[string, string]];
  t.equal(value, "evil%0D%0Ax-injected%3A%201");
  const [[, utf8]] = identityHeaderValues({ ...identity, id: "Zoë" }, { "x-id": "id" }) as [[string, string]];
  t.equal(utf8, "Zo%C3%AB");
});

t.test("identity headers may not name hop-by-hop or gateway fields", async (t) => {
  t.same(forbiddenIdentityHeaders(["x-postern-identity", "Host", "Signature", "content-length", "proxy-x", "x-postern-message-id", "Client-Cert"]), [
    "Host",
    "Signature",
    "content-length",
    "proxy-x",
    "x-postern-message-id",
    "Client-Cert",
  ]);
  t.same(forbiddenIdentityHeaders(["x-postern-identity", "x-postern-roles"]), []);
});

t.test("the upstream path keeps the base path as a prefix", async (t) => {
  const join = (base: string, path: string, query = "") => {
    const target = joinUpstreamPath(new URL(base), path, query);
    return target.path + target.query;
  };
  t.equal(join("http://h:1/in", "/v1/messages/x", "?q"), "/in/v1/messages/x?q");
  t.equal(join("http://h:1/in/", "/v1/messages/x", "?a=1&b=2"), "/in/v1/messages/x?a=1&b=2");
  t.equal(join("http://h:1", "/v1/messages/x"), "/v1/messages/x");
  t.equal(join("https://h/", "/v1/x", ""), "/v1/x");
  t.equal(join("https://h/a/b", "/c"), "/a/b/c");
  t.equal(join("https://h/a", "/"), "/a/");
  t.equal(join("https://h/a%20b", "/c%2Fd"), "/a%20b/c%2Fd", "percent-encoding is kept as sent");
});
