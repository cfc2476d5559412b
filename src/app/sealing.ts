import { readFile } from "node:fs/promises";
import type { PosternConfig } from "../config/index.js";
import { PosternError } from "../errors.js";
import type { BackendSealing } from "../gateway/index.js";
import { currentJwks, parseSealingJwks } from "../sealed/index.js";

/**
 * Reads each sealing backend's public keys (`backends.<name>.sealing.publicKeys`). The gateway
 * holds public keys only: `parseSealingJwks` refuses a file with a private member.
 * @throws PosternError naming the backend and file when one cannot be read.
 */
export async function loadSealing(config: Readonly<PosternConfig>): Promise<Map<string, BackendSealing>> {
  const out = new Map<string, BackendSealing>();
  for (const [name, backend] of Object.entries(config.backends)) {
    if (!backend.sealing) continue;
    const file = backend.sealing.publicKeys;
    try {
      const keys = parseSealingJwks(JSON.parse(await readFile(file, "utf8")));
      if (keys.keys.length === 0) throw new PosternError("bad-request", "it holds no key");
      out.set(name, { keys, algorithms: backend.sealing.algorithms });
    } catch (cause) {
      throw new PosternError("internal", `backends.${name}.sealing.publicKeys (${file}): ${(cause as Error).message}`, { cause });
    }
  }
  return out;
}

/** The JWKS served at /.well-known/postern-backend-keys/<name>: the keys current now; undefined for a backend without sealing. */
export function backendJwks(sealing: ReadonlyMap<string, BackendSealing>, name: string, nowMs: number): unknown {
  const backend = sealing.get(name);
  return backend ? currentJwks(backend.keys, nowMs) : undefined;
}
