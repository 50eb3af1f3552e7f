export { type BridgeMetrics, createBridgeMetrics } from "./bridge-metrics.ts";
