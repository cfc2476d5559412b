import { z } from "zod";
import { configSchema } from "./schema.js";

/** The JSON Schema of the configuration file (editors, CI), from the same schema `start` checks with. */
export function configJsonSchema(): Record<string, unknown> {
  return {
    $id: "https://postern.dev/schemas/postern.config.json",
    title: "Postern configuration",
    ...z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }),
  };
}
