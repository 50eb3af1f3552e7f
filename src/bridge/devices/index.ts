export { DeviceStore } from "./device-store.ts";
export { DEVICES_SHARD, DevicesProcessor } from "./devices-processor.ts";
export { ensurePresenceStream, presenceStreamNames } from "./presence.ts";
