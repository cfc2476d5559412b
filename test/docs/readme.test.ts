/**
 * The README is true to the code: its TypeScript blocks type-check (strict, against the built
 * package as users import it), its YAML blocks are valid configuration, and its shell blocks
 * are valid bash whose `postern` commands exist and take the flags they are shown with.
 * (test/docs/readme-walkthrough.test.ts runs the quick start's commands for real.)
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import t from "tap";
import { parse as parseYaml } from "yaml";
import { configSchema } from "../../src/config/schema.js";
import { ROOT } from "../helpers/process.js";

const run = promisify(execFile);

interface Block {
  lang: string;
  line: number;
  text: string;
}

/** Fenced blocks with their language and the README line they start on. */
function blocks(markdown: string): Block[] {
  const found: Block[] = [];
  let open: Block | undefined;
  markdown.split("\n").forEach((line, index) => {
    const fence = /^```(\S*)\s*$/.exec(line);
    if (fence && !open) open = { lang: fence[1]!, line: index + 1, text: "" };
    else if (fence && open) {
      found.push(open);
      open = undefined;
    } else if (open) open.text += `${line}\n`;
  });
  return found;
}

const readme = blocks(await readFile(join(ROOT, "README.md"), "utf8"));

/**
 * What the README's snippets take as given (the reader's own values): declared once for every
 * block, so a block that uses anything else fails to type-check.
 */
const CONTEXT = `import type { KeyObject } from "node:crypto";
import type { HttpMessageParts, PosternClient } from "postern";
import type { verifyStreamEntry } from "postern/consumer";
declare global {
  const cert: string, key: string, ca: string;
  const body: Buffer;
  const privateKey: KeyObject, publicKey: KeyObject;
  const certDer: Uint8Array;
  const receivedMessage: HttpMessageParts;
  const expected: string;
  /** A stream entry's fields, as a consumer read them. */
  const fields: Parameters<typeof verifyStreamEntry>[0];
  /** The client made in the README's client section. */
  const client: PosternClient;
  function handle(identity: string, body: Buffer): Promise<void>;
}
export {};
`;

t.test("every TypeScript block type-checks under strict against the built package", async (t) => {
  const ts = readme.filter((b) => b.lang === "ts" || b.lang === "typescript");
  t.ok(ts.length >= 3, `the README has TypeScript blocks (${ts.length})`);
  // Inside the package directory, so "postern" resolves to this package (its exports and
  // types, as an installed copy does) and its dependencies to node_modules.
  const dir = await mkdtemp(join(ROOT, ".readme-check-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, "context.ts"), CONTEXT);
  const files = ["context.ts"];
  for (const block of ts) {
    const name = `block-line-${block.line}.ts`;
    await writeFile(join(dir, name), `${block.text}\nexport {};\n`);
    files.push(name);
  }
  const tsconfig = {
    compilerOptions: { strict: true, noEmit: true, target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", skipLibCheck: true, types: ["node"], lib: ["ES2022"] },
    files,
  };
  await writeFile(join(dir, "tsconfig.json"), JSON.stringify(tsconfig));
  const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
  const result = await run(process.execPath, [tsc, "-p", join(dir, "tsconfig.json")], { cwd: dir }).then(
    () => ({ code: 0, out: "" }),
    (error: { code: number; stdout: string }) => ({ code: error.code, out: error.stdout }),
  );
  // Name the README line of each error, not the temporary file's.
  t.equal(result.code, 0, result.out.replace(/block-line-(\d+)\.ts\((\d+),(\d+)\)/g, (_, start, l) => `README.md:${Number(start) + Number(l)}`));
});

t.test("every YAML block is valid configuration", async (t) => {
  const yaml = readme.filter((b) => b.lang === "yaml" || b.lang === "yml");
  t.ok(yaml.length >= 1);
  for (const block of yaml) {
    const parsed = configSchema.safeParse(parseYaml(block.text) ?? {});
    t.ok(parsed.success, `README.md:${block.line}: ${parsed.success ? "" : JSON.stringify(parsed.error.issues)}`);
  }
});

/** The shell commands of a block, continuation lines joined, comments and blanks dropped. */
function commands(text: string): string[] {
  return text
    .replace(/\\\n\s*/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
}

/** `postern <command> [<subcommand>] --flags...` invocations in a command line (after npx or node_modules/.bin/). */
function posternInvocations(line: string): Array<{ words: string[]; flags: string[] }> {
  const found: Array<{ words: string[]; flags: string[] }> = [];
  for (const match of line.matchAll(/(?:^|[\s;&|(])(?:npx |node_modules\/\.bin\/)?postern((?: [^|;&#)]*)?)/g)) {
    const args = (match[1] ?? "").trim().split(/\s+/).filter(Boolean);
    const words: string[] = [];
    for (const arg of args) {
      if (arg.startsWith("-")) break;
      words.push(arg);
      if (words.length === 2) break;
    }
    const flags = args.filter((a) => /^--[a-z0-9-]+/.test(a)).map((a) => a.replace(/=.*$/, ""));
    found.push({ words, flags });
  }
  return found;
}

t.test("every shell block is valid bash, and its postern commands take the flags shown", async (t) => {
  const sh = readme.filter((b) => b.lang === "sh" || b.lang === "bash");
  t.ok(sh.length >= 5);
  const cli = join(ROOT, "dist", "cli", "main.js");
  // `postern <command> … --help` prints the command's usage, whatever follows the command: one
  // run per command named anywhere in the README, two at a time.
  const named = [...new Set(sh.flatMap((block) => commands(block.text).flatMap((line) => posternInvocations(line).map((i) => i.words[0] ?? ""))))];
  const helpOf = new Map<string, string>();
  for (let i = 0; i < named.length; i += 2) {
    await Promise.all(
      named.slice(i, i + 2).map(async (name) => {
        const answer = await run(process.execPath, [cli, ...(name ? [name] : []), "--help"], { cwd: ROOT }).then(
          (r) => r.stdout + r.stderr,
          (error: { stdout: string; stderr: string }) => `FAILED ${error.stdout}${error.stderr}`,
        );
        helpOf.set(name, answer);
      }),
    );
  }
  const help = (words: string[]): string => helpOf.get(words[0] ?? "")!;
  let checked = 0;
  for (const block of sh) {
    const syntax = await run("bash", ["-n", "-c", block.text]).then(
      () => "",
      (error: { stderr: string }) => error.stderr,
    );
    t.equal(syntax, "", `README.md:${block.line}: bash -n`);
    for (const line of commands(block.text)) {
      for (const { words, flags } of posternInvocations(line)) {
        // A subcommand is only a word the command's help names; the rest are values.
        const text = help(words);
        const used = words[1] !== undefined && new RegExp(`postern ${words[0]} ${words[1]}\\b`).test(text) ? words.slice(0, 2) : words.slice(0, 1);
        t.notMatch(text, /^FAILED/, `README.md:${block.line}: postern ${used.join(" ")} --help works`);
        for (const flag of flags) {
          if (flag === "--help" || flag === "--version") continue;
          t.ok(text.includes(flag), `README.md:${block.line}: postern ${used.join(" ")} documents ${flag}`);
          checked++;
        }
      }
    }
  }
  t.ok(checked > 20, `flags checked: ${checked}`);
});
