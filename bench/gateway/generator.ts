/**
 * The load generator: its own process (pinned to another core than the servers), driven by the
 * orchestrator in bench/gateway.ts over IPC (protocol.ts). It signs before each timed part, so
 * the servers' CPU counters see only serving.
 */
import { dialerFor, prepareHandshakes, prepareIdle, type IdlePool } from "./load-connections.js";
import { prepareKeepAlive, type PreparedPhase } from "./load-keep-alive.js";
import type { ClientMaterial, GeneratorReply, GeneratorRequest } from "./protocol.js";

if (!process.send) throw new Error("bench/gateway/generator.ts runs as a child of the bench, with an IPC channel");

let client: ClientMaterial | undefined;
let bodyBytes = 1024;
let sources: string[] = [];
let phase: PreparedPhase | undefined;
const idlePool: IdlePool = new Set();

function reply(message: GeneratorReply): void {
  process.send!(message);
}

function material(): ClientMaterial {
  if (!client) throw new Error("init first");
  return client;
}

async function handle(request: GeneratorRequest): Promise<GeneratorReply | undefined> {
  switch (request.kind) {
    case "init":
      ({ client, bodyBytes, sourceAddresses: sources } = request);
      return { kind: "ready" };
    case "keep-alive":
      phase = await prepareKeepAlive(material(), request.target, { ...request, bodyBytes });
      return { kind: "ready" };
    case "handshakes":
      phase = await prepareHandshakes(dialerFor(material(), request.target, sources), request.count, request.concurrency, request.resume);
      return { kind: "ready" };
    case "idle":
      // Connections of earlier "idle" phases stay open: the pool grows step by step until "release".
      phase = prepareIdle(dialerFor(material(), request.target, sources), material(), idlePool, request.count, request.concurrency, bodyBytes);
      return { kind: "ready" };
    case "go": {
      if (!phase) throw new Error("no phase prepared");
      // Connections stay open until "release": the orchestrator reads the server's counters first.
      return { kind: "done", result: await phase.run() };
    }
    case "release": {
      await phase?.close();
      phase = undefined;
      return { kind: "ready" };
    }
    case "exit":
      await phase?.close();
      process.disconnect();
      return undefined;
  }
}

let queue = Promise.resolve();
process.on("message", (request: GeneratorRequest) => {
  queue = queue.then(async () => {
    try {
      const answer = await handle(request);
      if (answer) reply(answer);
    } catch (error) {
      reply({ kind: "failed", message: String((error as Error).stack ?? error) });
    }
  });
});
process.on("disconnect", () => process.exit(0));
