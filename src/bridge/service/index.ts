export { BRIDGE_SERVICE_NAME, type BridgeStatus, shardStatus, startBridgeService } from "./bridge-status.ts";
