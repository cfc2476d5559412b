/** The public surface of src/gateway/: everything outside it imports from here. */
export { type ExplainDeps, type Explanation, explainAccess } from "./explain.js";
export { Gateway, type BackendSealing, type GatewayDeps } from "./pipeline.js";
export { mediaType } from "./media-type.js";
export { PathRouter, type PathMatch, type RouteEntry } from "./path-router.js";
export { type RouteMatch, RouteTable } from "./routes.js";
