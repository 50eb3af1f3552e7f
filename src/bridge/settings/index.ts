export { type BridgeSettings, devicesTenantId } from "./bridge-settings.ts";
export { bridgeFlagOptions, loadBridgeSettings } from "./load-bridge-settings.ts";
