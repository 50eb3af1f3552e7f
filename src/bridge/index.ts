export { BRIDGE_STATUS_FILE, createBridge } from "./bridge.ts";
