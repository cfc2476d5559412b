/** The public surface of src/gateway/: everything outside it imports from here. */
export { type ExplainDeps, type Explanation, explainAccess } from "./explain.js";
export { Gateway } from "./pipeline.js";
export { RouteTable, matchSegments } from "./routes.js";
