#!/usr/bin/env node
import { createRequire } from "node:module";
import { UsageError } from "./usage.js";

interface Command {
  summary: string;
  /** Loaded only when the command runs or prints its usage, so each command pays for what it imports. */
  load(): Promise<{ usage?: string; run(args: string[]): Promise<number> }>;
}

const COMMANDS: Record<string, Command> = {
  start: {
    summary: "run the gateway (data plane, admin plane, public + metrics listener)",
    load: async () => {
      const m = await import("./serve.js");
      return { usage: m.usage, run: m.runServe };
    },
  },
  send: {
    summary: "sign a message with a client certificate and post it to the gateway",
    load: async () => {
      const m = await import("./send.js");
      return { usage: m.usage, run: m.runSend };
    },
  },
  verify: {
    summary: "verify a forwarded stream entry against the gateway's published keys",
    load: async () => {
      const m = await import("./verify.js");
      return { usage: m.usage, run: m.runVerify };
    },
  },
  explain: {
    summary: "explain whether a certificate or identity may post to a route, check by check",
    load: async () => {
      const m = await import("./explain.js");
      return { usage: m.usage, run: m.runExplain };
    },
  },
  init: {
    summary: "create the root and issuing CA (keys encrypted with the CA passphrase)",
    load: async () => {
      const m = await import("./init.js");
      return { usage: m.usage, run: m.runInit };
    },
  },
  token: {
    summary: "create a one-time enrollment token bound to one identity (admin API)",
    load: async () => {
      const m = await import("./token.js");
      return { usage: m.usage, run: m.runToken };
    },
  },
  enroll: {
    summary: "enroll with a one-time token: the key is made here and never sent",
    load: async () => {
      const m = await import("./enroll.js");
      return { usage: m.usage, run: m.runEnroll };
    },
  },
  cert: {
    summary: "issue, list and revoke client certificates; renew the gateway's own server certificate (admin API)",
    load: async () => {
      const m = await import("./cert.js");
      return { usage: m.usage, run: m.runCert };
    },
  },
  renew: {
    summary: "renew a client certificate over mTLS with the certificate itself",
    load: async () => {
      const m = await import("./renew.js");
      return { usage: m.usage, run: m.runRenew };
    },
  },
  admin: {
    summary: "enroll an admin's TOTP second factor for issue, revoke and token create",
    load: async () => {
      const m = await import("./admin.js");
      return { usage: m.usage, run: m.runAdmin };
    },
  },
  keys: {
    summary: "rotate or list the gateway's forward-signing keys (the JWKS at /.well-known/postern-keys)",
    load: async () => {
      const m = await import("./keys.js");
      return { usage: m.usage, run: m.runKeys };
    },
  },
  pki: {
    summary: "back up and restore the PKI's trust state; re-issue the built-in certificates",
    load: async () => {
      const m = await import("./pki.js");
      return { usage: m.usage, run: m.runPki };
    },
  },
  config: {
    summary: "check the configuration as start would, or print its JSON Schema",
    load: async () => {
      const m = await import("./config.js");
      return { usage: m.usage, run: m.runConfig };
    },
  },
  audit: {
    summary: "verify the PKI audit log's hash chain",
    load: async () => {
      const m = await import("./audit.js");
      return { usage: m.usage, run: m.runAudit };
    },
  },
};

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `Usage: postern <command> [options]\n\nCommands:\n${lines.join("\n")}\n\nRun "postern <command> --help" for a command's options.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === "--version" || name === "-V" || name === "version") {
    const { version } = createRequire(import.meta.url)("../../package.json") as { version: string };
    process.stdout.write(`postern ${version} (node ${process.version})\n`);
    return 0;
  }
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(help());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`postern: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  const loaded = await command.load();
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(`${loaded.usage ?? `postern ${name}`}\n`);
    return 0;
  }
  try {
    return await loaded.run(args);
  } catch (error) {
    const usage = error instanceof UsageError || (error as NodeJS.ErrnoException).code?.startsWith("ERR_PARSE_ARGS");
    process.stderr.write(`postern ${name}: ${(error as Error).message}\n`);
    if (usage && loaded.usage) process.stderr.write(`\n${loaded.usage}\n`);
    return usage ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
