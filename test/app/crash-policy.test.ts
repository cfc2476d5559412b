import { EventEmitter } from "node:events";
import t from "tap";
import { installCrashPolicy } from "../../src/app/crash-policy.js";

t.test("an uncaught error is logged and counted, and the process keeps serving", async (t) => {
  const proc = new EventEmitter();
  const logged: string[] = [];
  let counted = 0;
  let fatal = 0;
  installCrashPolicy(proc, {
    log: { info() {}, warn() {}, error: (m) => void logged.push(m) },
    count: () => void counted++,
    onFatal: () => void fatal++,
  });
  proc.emit("uncaughtException", new TypeError("boom"));
  proc.emit("unhandledRejection", new Error("later"));
  t.equal(counted, 2);
  t.equal(fatal, 0);
  t.match(logged, [/uncaught exception/, /unhandled rejection/]);
});

t.test("a burst of them ends the process through onFatal, once", async (t) => {
  const proc = new EventEmitter();
  let now = 0;
  let fatal = 0;
  installCrashPolicy(proc, { log: { info() {}, warn() {}, error() {} }, count() {}, onFatal: () => void fatal++, maxErrors: 3, windowMs: 1000, now: () => now });
  for (let i = 0; i < 3; i++) proc.emit("uncaughtException", new Error(String(i)));
  t.equal(fatal, 0, "three within the window are survived");
  now = 2000;
  for (let i = 0; i < 3; i++) proc.emit("uncaughtException", new Error(String(i)));
  t.equal(fatal, 0, "the window slides");
  for (let i = 0; i < 3; i++) proc.emit("uncaughtException", new Error(String(i)));
  t.equal(fatal, 1, "the fourth within the window is fatal, and only once");
});
