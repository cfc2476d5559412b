import t from "tap";
import { ConfigError } from "../../src/config/load.js";
import { PosternError } from "../../src/errors.js";
import { compileStreamTemplate, routeParamNames } from "../../src/forward/stream-template.js";

const code = (fn: () => unknown) => {
  try {
    fn();
    return "none";
  } catch (error) {
    return error instanceof PosternError ? error.code : error instanceof ConfigError ? "config" : "other";
  }
};

t.test("a name without placeholders is fixed and resolves to itself", async (t) => {
  const template = compileStreamTemplate("messages");
  t.equal(template.fixedName, "messages");
  t.same(template.paramNames, []);
  t.equal(template.resolve("any", { topic: "x/../y" }), "messages", "params are not read");
});

t.test("{route} and {param.<name>} are replaced", async (t) => {
  const template = compileStreamTemplate("{route}.orders-{param.topic}-{param.region}");
  t.equal(template.fixedName, undefined);
  t.same(template.paramNames, ["topic", "region"]);
  t.equal(template.resolve("messages", { topic: "eu_1", region: "west" }), "messages.orders-eu_1-west");
  t.same(compileStreamTemplate("{param.a}{param.a}").paramNames, ["a"], "each parameter once");
});

t.test("a parameter value outside [A-Za-z0-9._-] is bad-request, never part of a key", async (t) => {
  const template = compileStreamTemplate("orders-{param.topic}");
  for (const value of ["a:b", "a{b}", "a b", "%41", "a/b", "é", "*", ""]) {
    t.equal(code(() => template.resolve("r", { topic: value })), "bad-request", JSON.stringify(value));
  }
  t.equal(code(() => template.resolve("r", { topic: "x".repeat(129) })), "bad-request", "too long a value");
  t.equal(code(() => template.resolve("r", { topic: "x".repeat(122) })), "bad-request", "too long a name");
  t.equal(template.resolve("r", { topic: "x".repeat(121) }).length, 128, "128 characters pass");
  t.equal(code(() => template.resolve("r", {})), "internal", "a route without the parameter is a config fault");
});

t.test("templates with other characters or braces are refused at compile time", async (t) => {
  for (const bad of ["a:b", "{topic}", "{param.}", "a{b", "{route", "", "x}y"]) {
    t.equal(code(() => compileStreamTemplate(bad)), "config", JSON.stringify(bad));
  }
});

t.test("route path parameter names", async (t) => {
  t.same(routeParamNames("/v1/messages/:topic"), ["topic"]);
  t.same(routeParamNames("/v1/:tenant/x/:topic"), ["tenant", "topic"]);
  t.same(routeParamNames("/v1/messages"), []);
});
