import t from "tap";
import { PosternError } from "../../src/errors.js";
import { PathRouter } from "../../src/gateway/path-router.js";

const router = new PathRouter(
  [
    { method: "POST", path: "/v1/messages/:topic", value: "post-topic" },
    { method: "GET", path: "/v1/messages/:topic", value: "get-topic" },
    { method: "POST", path: "/v1/messages/fixed/x", value: "fixed" },
    { method: "GET", path: "/ocsp/*", value: "ocsp-get" },
    { method: "POST", path: "/ocsp", value: "ocsp-post" },
  ],
  {},
);

const codeOf = (fn: () => unknown) => {
  try {
    fn();
    return "matched";
  } catch (error) {
    return (error as PosternError).code;
  }
};

t.test("a :param matches one non-empty segment and is handed back", async (t) => {
  t.same(router.find("POST", "/v1/messages/orders"), { value: "post-topic", params: { topic: "orders" } });
  t.equal(codeOf(() => router.find("POST", "/v1/messages/")), "not-found", "an empty segment is no match");
  t.equal(codeOf(() => router.find("POST", "/v1/messages/a/b")), "not-found", "nor are two");
});

t.test("the first match wins", async (t) => {
  const first = new PathRouter([
    { method: "GET", path: "/a/:x", value: 1 },
    { method: "GET", path: "/a/b", value: 2 },
  ]);
  t.equal(first.find("GET", "/a/b").value, 1);
});

t.test("a path that exists for other methods is 405, naming them", async (t) => {
  const error = (() => {
    try {
      router.find("DELETE", "/v1/messages/orders");
    } catch (e) {
      return e as PosternError;
    }
  })()!;
  t.equal(error.code, "method-not-allowed");
  t.same(error.extensions.allow, ["POST", "GET"]);
});

t.test("a last * takes any non-empty rest", async (t) => {
  t.equal(router.find("GET", "/ocsp/MEIwQDA%2B/more").value, "ocsp-get");
  t.equal(codeOf(() => router.find("GET", "/ocsp/")), "matched", "an empty rest segment still counts as a rest");
  t.equal(codeOf(() => router.find("GET", "/ocsp")), "method-not-allowed", "without a rest it is the POST path");
});

t.test("decoding: params are percent-decoded on request, and bad encoding is a bad request", async (t) => {
  const decoding = new PathRouter([{ method: "GET", path: "/certificates/:serial", value: 1 }], { decode: true });
  t.same(decoding.find("GET", "/certificates/a%20b").params, { serial: "a b" });
  t.equal(codeOf(() => decoding.find("GET", "/certificates/%E0%A4%A")), "bad-request");
});
