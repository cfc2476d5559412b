/** The public surface of src/http/: everything outside it imports from here. */
export { readBody } from "./body.js";
export { dataPlaneHandler } from "./data-plane.js";
export { type LiveConnection, MtlsServer } from "./mtls-server.js";
export type { AnyRequest, AnyResponse, OptionalPeerHandler } from "./types.js";
export type { Peer } from "../tls/index.js";
export { publicEndpoints, type Readiness } from "./public-endpoints.js";
export { PublicServer } from "./public-server.js";
export { refuseWhile } from "./refuse-while.js";
export { sendBytes, sendJson, sendProblem } from "./respond.js";
