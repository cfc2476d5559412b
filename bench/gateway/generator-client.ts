/** The orchestrator's handle on the load generator process (generator.ts), one request at a time. */
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import type { ClientMaterial, GeneratorReply, GeneratorRequest, PhaseResult } from "./protocol.js";
import { spawnPinned, stopChild } from "./processes.js";
import { ROOT } from "./servers.js";

const TSX = import.meta.resolve("tsx");

export class LoadGenerator {
  private waiting: ((reply: GeneratorReply) => void) | undefined;

  private constructor(private readonly child: ChildProcess) {
    child.on("message", (reply: GeneratorReply) => {
      const waiter = this.waiting;
      this.waiting = undefined;
      waiter?.(reply);
    });
    child.on("exit", (code) => this.waiting?.({ kind: "failed", message: `the load generator exited (code ${code})` }));
  }

  /** Starts the generator on `cpu` and gives it the client's certificate, key and CA bundle. */
  static async start(cpu: number | undefined, init: { client: ClientMaterial; bodyBytes: number; sourceAddresses: string[] }): Promise<LoadGenerator> {
    const child = spawnPinned(cpu, process.execPath, ["--import", TSX, join(ROOT, "bench", "gateway", "generator.ts")], {
      cwd: ROOT,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const generator = new LoadGenerator(child);
    await generator.ask({ kind: "init", ...init });
    return generator;
  }

  private ask(request: GeneratorRequest): Promise<GeneratorReply> {
    return new Promise((resolve, reject) => {
      this.waiting = (reply) => (reply.kind === "failed" ? reject(new Error(reply.message)) : resolve(reply));
      this.child.send(request);
    });
  }

  /** Sends a phase request; resolves once its messages are signed and its connections warm. */
  async prepare(request: Exclude<GeneratorRequest, { kind: "init" | "go" | "release" | "exit" }>): Promise<void> {
    await this.ask(request);
  }

  /** Runs the prepared phase's timed part. */
  async go(): Promise<PhaseResult> {
    const reply = await this.ask({ kind: "go" });
    if (reply.kind !== "done") throw new Error(`unexpected reply ${reply.kind}`);
    return reply.result;
  }

  /** Closes the phase's connections. */
  async release(): Promise<void> {
    await this.ask({ kind: "release" });
  }

  async stop(): Promise<void> {
    if (this.child.connected) this.child.send({ kind: "exit" } satisfies GeneratorRequest);
    await stopChild(this.child, 5000);
  }
}
