/** The public surface of src/http/: everything outside it imports from here. */
export { readBody } from "./body.js";
export { dataPlaneHandler } from "./data-plane.js";
export { type AnyRequest, type AnyResponse, MtlsServer, type OptionalPeerHandler, type Peer } from "./mtls-server.js";
export { publicEndpoints, type Readiness } from "./public-endpoints.js";
export { PublicServer } from "./public-server.js";
export { refuseWhile } from "./refuse-while.js";
export { sendJson, sendProblem } from "./respond.js";
