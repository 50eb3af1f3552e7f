export { createBridge } from "./bridge.ts";
export { BRIDGE_STATUS_FILE } from "./status-report.ts";
