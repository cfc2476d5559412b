/** The public surface of src/cli/: everything outside it imports from here. */
export { runServe } from "./serve.js";
