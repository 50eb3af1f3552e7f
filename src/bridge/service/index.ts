export {
  BRIDGE_SERVICE_NAME,
  type BridgeStatus,
  type ShardStatus,
  shardStatus,
  startBridgeService,
} from "./bridge-status.ts";
