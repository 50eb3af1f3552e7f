export { DedupeWindowRecord, DedupeWindows, lifeKeyOfState, outboxLifeKey, windowStateKey } from "./dedupe-windows.ts";
export { LegacyRingSnapshot, windowFromLegacyRing } from "./sequence-window.ts";
