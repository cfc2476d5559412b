/** The public surface of src/metrics/: everything outside it imports from here. */
export { PrometheusRecorder } from "./prometheus.js";
export { type EstOperation, type HandshakeFailure, type MetricsRecorder, type ReloadFailure, type ReloadKind, type StorageFailure } from "./recorder.js";
export { TrafficHistory, type TrafficMinute } from "./traffic-history.js";
