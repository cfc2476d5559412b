/** The public surface of src/est/: EST (RFC 7030) enrollment, mounted on the admin listener. */
export { EST_PREFIX, type EstDeps, estEndpoints } from "./endpoints.js";
