import t from "tap";
import { descendantsOf, parseMachineBusyTicks, parseProcStat, parseStatusRssBytes, parseStatusVoluntarySwitches, voluntarySwitches } from "../../bench/gateway/proc.js";
import { parseCpuList } from "../../bench/gateway/processes.js";

t.test("a /proc stat line is read from its last parenthesis, whatever the command name holds", async (t) => {
  const line = "4242 (node (x) y) S 17 4242 4242 0 -1 4194560 1 2 3 4 150 37 9 4 20 0 11 0 5411 1 1 0";
  t.same(parseProcStat(line), { pid: 4242, comm: "node (x) y", ppid: 17, utimeTicks: 150, stimeTicks: 37, cutimeTicks: 9, cstimeTicks: 4 });
  const redis = "2214 (redis-server) S 1 2214 2214 0 -1 4194624 894 0 7 0 540 367 0 0 20 0 5 0 5411 64905216 2023 18446744073709551615";
  t.match(parseProcStat(redis), { comm: "redis-server", ppid: 1, utimeTicks: 540, stimeTicks: 367 });
});

t.test("a line without the stat shape is refused", async (t) => {
  t.throws(() => parseProcStat("no parentheses here"));
  t.throws(() => parseProcStat("1 (short) S 0"));
});

t.test("VmRSS is read in kB and returned in bytes; absent, undefined", async (t) => {
  t.equal(parseStatusRssBytes("Name:\tnode\nVmHWM:\t  90000 kB\nVmRSS:\t   81234 kB\nThreads:\t11\n"), 81234 * 1024);
  t.equal(parseStatusRssBytes("Name:\tkthreadd\nThreads:\t1\n"), undefined);
});

t.test("wake-ups are the main thread's voluntary context switches, not the involuntary ones", async (t) => {
  t.equal(parseStatusVoluntarySwitches("Name:\tredis-server\nvoluntary_ctxt_switches:\t48213\nnonvoluntary_ctxt_switches:\t907\n"), 48213);
  t.equal(parseStatusVoluntarySwitches("Name:\tx\nnonvoluntary_ctxt_switches:\t907\n"), undefined);
  const before = voluntarySwitches(process.pid);
  t.type(before, "number", "this process's own count is readable");
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.ok(voluntarySwitches(process.pid)! > before!, "sleeping in the event loop counts");
});

t.test("a process tree holds the root and every descendant, and nothing else", async (t) => {
  const parents = new Map([[10, 1], [11, 10], [12, 11], [13, 10], [20, 1], [21, 20]]);
  t.same(descendantsOf(10, parents).sort(), [10, 11, 12, 13]);
  t.same(descendantsOf(99, parents), [99]);
});

t.test("machine busy time is every field of the cpu line but idle and iowait", async (t) => {
  t.equal(parseMachineBusyTicks("cpu  451089 0 148566 94142 1069 0 2102 0 0 0\ncpu0 1 2 3 4\n"), 451089 + 148566 + 2102);
  t.throws(() => parseMachineBusyTicks("cpu0 1 2 3 4 5\n"));
});

t.test("CPU lists expand ranges", async (t) => {
  t.same(parseCpuList("0-1"), [0, 1]);
  t.same(parseCpuList("0,2-3,8\n"), [0, 2, 3, 8]);
  t.same(parseCpuList(""), []);
});
