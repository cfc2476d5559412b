#!/usr/bin/env node
import * as audit from "./audit.js";
import * as cert from "./cert.js";
import * as enroll from "./enroll.js";
import * as explain from "./explain.js";
import * as init from "./init.js";
import * as keys from "./keys.js";
import * as pki from "./pki.js";
import * as send from "./send.js";
import * as renew from "./renew.js";
import * as serve from "./serve.js";
import * as token from "./token.js";
import { UsageError } from "./usage.js";
import * as verify from "./verify.js";

interface Command {
  summary: string;
  usage?: string;
  run(args: string[]): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  start: { summary: serve.summary, run: serve.runServe },
  send: { summary: send.summary, usage: send.usage, run: send.runSend },
  verify: { summary: verify.summary, usage: verify.usage, run: verify.runVerify },
  explain: { summary: explain.summary, usage: explain.usage, run: explain.runExplain },
  init: { summary: init.summary, usage: init.usage, run: init.runInit },
  token: { summary: token.summary, usage: token.usage, run: token.runToken },
  enroll: { summary: enroll.summary, usage: enroll.usage, run: enroll.runEnroll },
  cert: { summary: cert.summary, usage: cert.usage, run: cert.runCert },
  renew: { summary: renew.summary, usage: renew.usage, run: renew.runRenew },
  keys: { summary: keys.summary, usage: keys.usage, run: keys.runKeys },
  audit: { summary: audit.summary, usage: audit.usage, run: audit.runAudit },
  pki: { summary: pki.summary, usage: pki.usage, run: pki.runPki },
};

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `Usage: postern <command> [options]\n\nCommands:\n${lines.join("\n")}\n\nRun "postern <command> --help" for a command's options.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(help());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`postern: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(`${command.usage ?? `postern ${name}`}\n`);
    return 0;
  }
  try {
    return await command.run(args);
  } catch (error) {
    const usage = error instanceof UsageError || (error as NodeJS.ErrnoException).code?.startsWith("ERR_PARSE_ARGS");
    process.stderr.write(`postern ${name}: ${(error as Error).message}\n`);
    if (usage && command.usage) process.stderr.write(`\n${command.usage}\n`);
    return usage ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
