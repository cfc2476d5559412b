/** The public surface of src/app/: everything outside it imports from here. */
export { installCrashPolicy } from "./crash-policy.js";
export { type App, type AppDeps, createApp, type Mode } from "./create-app.js";
export { type ListeningAddresses } from "./listeners.js";
export { ClusterChannel } from "./cluster-rpc.js";
export { createWorkerApp, type WorkerApp } from "./worker-app.js";
export { workerCount } from "./worker-count.js";
